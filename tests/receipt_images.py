"""Photos of receipts drawn with Pillow, with the fields printed on them known, for the OCR tests and bench.

make_receipt(seed) always draws the same receipt for a seed: one of four layouts (a narrow thermal
slip, an A4 invoice, a restaurant bill with a tip, a long supermarket slip with its VAT table), in
English, German, Spanish, Portuguese, French or Italian, in one of seven currencies, then degraded
the way a phone photo is: paper on a darker table, a few degrees of rotation, a shadow, blur, noise
and JPEG artefacts.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import random

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu/", "/usr/share/fonts/truetype/liberation/")
# Each font and its bold: monospace prints like a thermal printer, the sans fonts like an office printer.
MONO_FONTS = {"DejaVuSansMono": "DejaVuSansMono-Bold", "DejaVuSansMono-Bold": "DejaVuSansMono-Bold",
              "LiberationMono-Regular": "LiberationMono-Bold", "LiberationMono-Bold": "LiberationMono-Bold"}
SANS_FONTS = {"DejaVuSans": "DejaVuSans-Bold", "LiberationSans-Regular": "LiberationSans-Bold",
              "LiberationSans-Bold": "LiberationSans-Bold", "DejaVuSansCondensed": "DejaVuSansCondensed-Bold"}
LAYOUTS = ("thermal", "invoice", "restaurant", "supermarket")
MONTHS = {
    "en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "es": "ene feb mar abr may jun jul ago sep oct nov dic",
    "pt": "jan fev mar abr mai jun jul ago set out nov dez",
    "fr": "janv. févr. mars avr. mai juin juil. août sept. oct. nov. déc.",
    "it": "gen feb mar apr mag giu lug ago set ott nov dic",
}
WORDS = {
    "en": dict(total=("TOTAL", "AMOUNT DUE", "GRAND TOTAL", "BALANCE DUE", "Total"), subtotal="SUBTOTAL",
               tax=("TAX", "Sales Tax", "VAT"), tip="TIP", cash="CASH", change="CHANGE", card="VISA",
               date="Date:", time="Time:", thanks="THANK YOU FOR SHOPPING!", invoice="INVOICE",
               table="Table", server="Server", items="Items", qty="Qty", price="Price", amount="Amount",
               goods="Milk 1L|Bread|Eggs 12ct|Coffee beans|Bananas|Apples|Cheddar|Butter|Orange juice|"
                     "Paper towels|Shampoo|Rice 2lb|Pasta|Tomatoes|Chicken breast|Yogurt|Cereal|Soap",
               dishes="Cheeseburger|Caesar salad|Fries|Iced tea|Cappuccino|Soup of the day|Steak|Cola|"
                      "Lemonade|Pancakes|Club sandwich|Brownie",
               services="Web design|Consulting (hours)|Logo artwork|Hosting 12 months|Photography|Support"),
    "de": dict(total=("SUMME", "GESAMT", "ZU ZAHLEN", "Summe {code}", "Gesamtbetrag"), subtotal="ZWISCHENSUMME",
               tax=("MwSt", "USt"), tip="Trinkgeld", cash="BAR", change="RÜCKGELD", card="EC-Karte",
               date="Datum:", time="Uhrzeit:", thanks="Vielen Dank für Ihren Einkauf", invoice="RECHNUNG",
               table="Tisch", server="Bedienung", items="Artikel", qty="Menge", price="Preis", amount="Betrag",
               goods="Vollmilch 3,5%|Bio Eier|Roggenbrot|Butter|Bananen|Kaffee gemahlen|Gouda jung|Tomaten|"
                     "Apfelsaft|Joghurt Natur|Nudeln|Zahnpasta|Mineralwasser|Brezel|Salami|Kartoffeln",
               dishes="Schnitzel|Currywurst|Pommes|Apfelschorle|Weißbier|Kaffee|Kartoffelsalat|Suppe",
               services="Beratung|Webdesign|Reparatur|Wartung|Fotografie|Montage"),
    "es": dict(total=("TOTAL", "TOTAL A PAGAR", "IMPORTE"), subtotal="SUBTOTAL", tax=("IVA",),
               tip="PROPINA", cash="EFECTIVO", change="CAMBIO", card="TARJETA", date="Fecha:", time="Hora:",
               thanks="GRACIAS POR SU VISITA", invoice="FACTURA", table="Mesa", server="Camarero",
               items="Articulos", qty="Cant.", price="Precio", amount="Importe",
               goods="Leche entera|Pan de molde|Huevos|Aceite de oliva|Tomates|Queso|Jamon|Arroz|Agua|"
                     "Cafe molido|Yogur|Manzanas|Detergente",
               dishes="Tortilla|Paella|Croquetas|Cerveza|Cafe con leche|Vino tinto|Ensalada|Flan",
               services="Consultoria|Diseno web|Mantenimiento|Reparacion|Traduccion"),
    "pt": dict(total=("TOTAL", "TOTAL A PAGAR", "VALOR TOTAL"), subtotal="SUBTOTAL", tax=("IVA",),
               tip="GORJETA", cash="DINHEIRO", change="TROCO", card="CARTAO", date="Data:", time="Hora:",
               thanks="OBRIGADO PELA PREFERENCIA", invoice="FATURA", table="Mesa", server="Atendente",
               items="Itens", qty="Qtd", price="Preco", amount="Valor",
               goods="Leite integral|Pao frances|Ovos|Arroz 5kg|Feijao|Cafe|Acucar|Banana|Queijo|"
                     "Manteiga|Refrigerante|Sabonete",
               dishes="Feijoada|Pastel|Caipirinha|Suco de laranja|Picanha|Pao de queijo|Agua com gas",
               services="Consultoria|Manutencao|Design grafico|Instalacao|Traducao"),
    "fr": dict(total=("TOTAL", "TOTAL A PAYER", "TOTAL TTC", "MONTANT TTC"), subtotal="SOUS-TOTAL",
               tax=("TVA",), tip="POURBOIRE", cash="ESPECES", change="RENDU", card="CB", date="Date :",
               time="Heure :", thanks="MERCI DE VOTRE VISITE", invoice="FACTURE", table="Table",
               server="Serveur", items="Articles", qty="Qte", price="Prix", amount="Montant",
               goods="Baguette|Lait demi-ecreme|Oeufs x6|Beurre doux|Camembert|Yaourts|Pommes|Cafe|"
                     "Jambon|Eau minerale|Pates|Chocolat noir",
               dishes="Croque-monsieur|Salade nicoise|Cafe creme|Verre de vin|Steak frites|Creme brulee",
               services="Conseil|Creation site web|Maintenance|Reparation|Traduction"),
    "it": dict(total=("TOTALE", "TOTALE EURO", "IMPORTO"), subtotal="SUBTOTALE", tax=("IVA",),
               tip="MANCIA", cash="CONTANTI", change="RESTO", card="CARTA", date="Data:", time="Ora:",
               thanks="GRAZIE E ARRIVEDERCI", invoice="FATTURA", table="Tavolo", server="Cameriere",
               items="Articoli", qty="Qta", price="Prezzo", amount="Importo",
               goods="Latte intero|Pane|Uova|Pasta|Pomodori|Mozzarella|Caffe|Olio extra vergine|Mele|"
                     "Acqua naturale|Prosciutto|Biscotti",
               dishes="Pizza margherita|Spaghetti|Tiramisu|Espresso|Vino della casa|Bruschetta|Lasagna",
               services="Consulenza|Sito web|Manutenzione|Riparazione|Traduzione"),
}
MERCHANTS = {
    "en": ("Corner Market", "BLUE DOOR CAFE", "Harbor Hardware", "Maple Street Deli", "SUNRISE PHARMACY",
           "Green Valley Grocery", "The Old Oak Pub", "QUICK STOP", "Riverside Books", "Golden Wok"),
    "de": ("Bäckerei Schmidt", "REWE Markt", "Getränke Weber", "Apotheke am Markt", "Café Lindner",
           "Metzgerei Bauer", "Drogerie Hansen", "Gasthaus zur Linde", "Buchhandlung Krause"),
    "es": ("Mercado Central", "BAR LA ESQUINA", "Farmacia Lopez", "Panaderia San Juan", "Cafeteria Sol",
           "Restaurante El Puerto", "Ferreteria Ruiz"),
    "pt": ("Padaria Estrela", "Mercado Bom Preco", "Farmacia Popular", "Restaurante Sabor Caseiro",
           "Casa do Pao", "LOJAS VITORIA", "Cafe Central"),
    "fr": ("Boulangerie Martin", "CARREFOUR CITY", "Pharmacie du Centre", "Le Petit Bistrot",
           "Librairie Dubois", "Cafe de la Gare", "Epicerie Fine Moreau"),
    "it": ("Panificio Rossi", "Bar Centrale", "Farmacia San Marco", "Trattoria da Mario", "Supermercato Conad",
           "Gelateria Bianchi", "Ferramenta Colombo"),
}
STREETS = {"en": "{n} Main Street|{n} Oak Avenue|{n} High St", "de": "Hauptstr. {n}|Bahnhofstraße {n}",
           "es": "Calle Mayor {n}|Av. de la Paz {n}", "pt": "Rua das Flores, {n}|Av. Brasil, {n}",
           "fr": "{n} rue de la Paix|{n} avenue Victor Hugo", "it": "Via Roma {n}|Corso Italia {n}"}
CITIES = {"en": "Springfield, IL 62701|London SW1A 1AA|Portland, OR 97201", "de": "10115 Berlin|80331 München",
          "es": "28013 Madrid|08001 Barcelona", "pt": "Sao Paulo - SP|1100-148 Lisboa",
          "fr": "75002 Paris|69001 Lyon", "it": "00184 Roma|20121 Milano"}
# Where each currency is spent: (language, how amounts are written, how dates are written).
PLACES = {
    "USD": [("en", "us", "us")], "GBP": [("en", "uk", "uk")], "JPY": [("en", "jp", "iso")],
    "EUR": [("de", "de", "de"), ("es", "eu", "eu"), ("fr", "fr", "eu"), ("it", "eu", "eu"), ("pt", "eu", "eu"),
            ("en", "uk", "uk")],
    "CHF": [("de", "ch", "de"), ("fr", "ch", "eu")], "BRL": [("pt", "eu", "eu")], "PLN": [("en", "eu", "de")],
}
SYMBOL = {"USD": "$", "GBP": "£", "JPY": "¥", "EUR": "€", "CHF": "CHF", "BRL": "R$", "PLN": "zł"}


@dataclasses.dataclass
class Receipt:
    image: bytes
    merchant: str
    total_minor: int
    currency: str
    date: datetime.date
    lines: list[str]  # as printed, columns two spaces apart (as Reader.lines gives them)
    layout: str = ""
    language: str = ""


def make_receipt(seed: int, *, today: datetime.date = datetime.date(2026, 12, 7)) -> Receipt:
    """Draw the receipt of this seed as a degraded JPEG photo, with what is printed on it."""
    rng = random.Random(seed)
    layout = LAYOUTS[seed % len(LAYOUTS)]
    currency = rng.choice(list(PLACES))
    language, number_style, date_style = rng.choice(PLACES[currency])
    day = today - datetime.timedelta(days=rng.randrange(365))
    slip = _Slip(rng, language, currency, number_style, date_style, day)
    rows = getattr(slip, layout)()
    paper = _draw(rng, rows, wide=layout == "invoice")
    image = _photograph(rng, paper)
    text = ["  ".join(part for part in row[1:] if part) for row in rows if any(row[1:])]
    return Receipt(image, slip.merchant, slip.total, currency, day, text, layout, language)


def make_not_receipt(seed: int) -> bytes:
    """A photo-like JPEG with no text: a sky, hills and a blurred sun."""
    rng = random.Random(seed)
    width, height = rng.choice([(1600, 1200), (1200, 1600), (2000, 1500)])
    image = Image.new("RGB", (width, height), (rng.randrange(90, 140), rng.randrange(150, 200), 235))
    draw = ImageDraw.Draw(image)
    for layer in range(4):
        base = height * (0.45 + 0.12 * layer)
        points = [(x, base + rng.uniform(-60, 60)) for x in range(0, width + 200, 200)]
        green = (rng.randrange(30, 90), rng.randrange(100, 170), rng.randrange(30, 80))
        draw.polygon([(0, height), *points, (width, height)], fill=green)
    sun = rng.randrange(100, width - 100), rng.randrange(80, height // 3)
    draw.ellipse([sun[0] - 70, sun[1] - 70, sun[0] + 70, sun[1] + 70], fill=(255, 230, 150))
    return _jpeg(image.filter(ImageFilter.GaussianBlur(2)), rng.randrange(60, 90))


class _Slip:
    """The rows of one receipt: ("center"|"lr"|"bold", left text, right text)."""

    def __init__(self, rng, language, currency, number_style, date_style, day):
        self.rng, self.language, self.currency, self.day = rng, language, currency, day
        self.number_style, self.date_style = number_style, date_style
        self.words = WORDS[language]
        self.merchant = rng.choice(MERCHANTS[language])
        self.total = 0

    def money(self, minor: int, symbol: bool = False) -> str:
        """Write an amount as the place prints it, with its currency sign when asked."""
        if self.currency == "JPY":
            text = f"{minor:,}"
        else:
            whole, cents = divmod(minor, 100)
            group = {"us": ",", "uk": ",", "de": ".", "eu": ".", "fr": " ", "ch": "'"}[self.number_style]
            point = "." if self.number_style in ("us", "uk", "ch") else ","
            text = f"{whole:,}".replace(",", group) + point + f"{cents:02d}"
        if not symbol:
            return text
        sign = SYMBOL[self.currency] if self.rng.random() < 0.7 else self.currency
        if sign in ("$", "£", "¥", "R$") or (sign == "CHF" and self.rng.random() < 0.5):
            return f"{sign}{text}" if len(sign) == 1 else f"{sign} {text}"
        return f"{text} {sign}"

    def date(self) -> str:
        """The day as the place prints it, in one of its usual forms."""
        d, months = self.day, MONTHS[self.language].split()
        forms = {
            "us": [f"{d:%m/%d/%Y}", f"{d:%m/%d/%y}", f"{months[d.month - 1]} {d.day}, {d.year}",
                   f"{d:%d}-{months[d.month - 1].upper()}-{d:%y}"],
            "uk": [f"{d:%d/%m/%Y}", f"{d.day} {months[d.month - 1]} {d.year}", f"{d:%d/%m/%y}"],
            "de": [f"{d:%d.%m.%Y}", f"{d:%d.%m.%y}", f"{d.day}. {months[d.month - 1]} {d.year}"],
            "eu": [f"{d:%d/%m/%Y}", f"{d:%d-%m-%Y}", f"{d.day} {months[d.month - 1]} {d.year}"],
            "iso": [f"{d:%Y-%m-%d}", f"{d:%Y/%m/%d}"],
        }[self.date_style] + [f"{d:%Y-%m-%d}"]
        return self.rng.choice(forms)

    def clock(self) -> str:
        return f"{self.rng.randrange(7, 22):02d}:{self.rng.randrange(60):02d}"

    def price(self) -> int:
        """A random price in minor units: yen have no cents."""
        if self.currency == "JPY":
            return self.rng.randrange(8, 250) * 10
        return self.rng.randrange(49, 2999) if self.rng.random() < 0.85 else self.rng.randrange(3000, 12000)

    def header(self) -> list[tuple]:
        rng, rows = self.rng, []
        if rng.random() < 0.15:
            rows.append(("center", {"en": "WELCOME TO", "de": "Willkommen bei"}.get(self.language, "*** ***"), ""))
        rows.append(("title", self.merchant, ""))
        rows.append(("center", rng.choice(STREETS[self.language].split("|")).format(n=rng.randrange(1, 250)), ""))
        rows.append(("center", rng.choice(CITIES[self.language].split("|")), ""))
        if rng.random() < 0.7:
            rows.append(("center", f"Tel. {rng.randrange(100, 999)} {rng.randrange(1000000, 9999999)}", ""))
        if rng.random() < 0.3:
            rows.append(("center", f"www.{self.merchant.lower().replace(' ', '')[:14]}.com", ""))
        return rows

    def lines_for(self, names: str, count: int) -> tuple[list[tuple], int]:
        rows, total = [], 0
        for name in self.rng.sample(names.split("|"), min(count, len(names.split("|")))):
            price, quantity = self.price(), 1 if self.rng.random() < 0.75 else self.rng.randrange(2, 5)
            if quantity > 1:
                rows.append(("lr", f"{quantity} x {self.money(price)}", ""))
            rows.append(("lr", name, self.money(price * quantity)))
            total += price * quantity
        return rows, total

    def tax_rate(self) -> float:
        return {"USD": 0.0825, "GBP": 0.2, "JPY": 0.1, "EUR": 0.19, "CHF": 0.081, "BRL": 0.17, "PLN": 0.23}[
            self.currency] if self.language != "de" or self.currency != "EUR" else 0.19

    def totals(self, items: int, tip: bool = False) -> list[tuple]:
        """Subtotal, tax, tip and total rows: tax on top in the US, included (shown after) elsewhere."""
        w, rng, rows = self.words, self.rng, []
        rate = self.tax_rate()
        added = self.currency == "USD"
        tax = round(items * rate) if added else items - round(items / (1 + rate))
        tip_minor = round((items + (tax if added else 0)) * rng.choice([0.1, 0.15, 0.18, 0.2])) if tip else 0
        if self.currency == "JPY":
            tip_minor = tip_minor // 10 * 10
        self.total = items + (tax if added else 0) + tip_minor
        if added or tip or rng.random() < 0.3:
            rows.append(("lr", w["subtotal"], self.money(items)))
        if added:
            rows.append(("lr", f"{rng.choice(w['tax'])} {rate * 100:.2f}%", self.money(tax)))
        if tip:
            rows.append(("lr", f"{w['tip']} {round(tip_minor / items * 100)}%", self.money(tip_minor)))
        label = rng.choice(w["total"]).format(code=self.currency)
        rows.append(("bold", label, self.money(self.total, symbol=rng.random() < 0.6)))
        if rng.random() < 0.5:
            paid = -(-self.total // 1000) * 1000 + (1000 if rng.random() < 0.5 else 0)
            rows.append(("lr", w["cash"], self.money(paid)))
            rows.append(("lr", w["change"], self.money(paid - self.total)))
        else:
            rows.append(("lr", w["card"], self.money(self.total)))
        if not added:
            rows.append(("lr", f"{rng.choice(w['tax'])} {rate * 100:g}%", self.money(tax)))
        return rows

    def stamp(self) -> tuple:
        w = self.words
        if self.rng.random() < 0.5:
            return ("lr", f"{w['date']} {self.date()}", f"{w['time']} {self.clock()}")
        return ("lr", f"{self.date()} {self.clock()}", f"#{self.rng.randrange(1000, 99999)}")

    def thermal(self) -> list[tuple]:
        items, subtotal = self.lines_for(self.words["goods"], self.rng.randrange(2, 7))
        stamp, rule = self.stamp(), ("center", "-" * 32, "")
        top, bottom = ([stamp], []) if self.rng.random() < 0.7 else ([], [stamp])
        return [*self.header(), *top, rule, *items, rule, *self.totals(subtotal), *bottom,
                ("center", self.words["thanks"], "")]

    def restaurant(self) -> list[tuple]:
        w = self.words
        items, subtotal = self.lines_for(w["dishes"], self.rng.randrange(2, 6))
        server = self.rng.choice(["Anna", "Tom", "Luca"])
        table = ("lr", f"{w['table']} {self.rng.randrange(1, 40)}", f"{w['server']}: {server}")
        return [*self.header(), self.stamp(), table, ("center", "=" * 32, ""), *items, ("center", "=" * 32, ""),
                *self.totals(subtotal, tip=True), ("center", w["thanks"], "")]

    def supermarket(self) -> list[tuple]:
        items, subtotal = self.lines_for(self.words["goods"], self.rng.randrange(9, 16))
        count = ("lr", f"{self.words['items']}: {len([r for r in items if r[2]])}", "")
        return [*self.header(), ("center", "-" * 32, ""), *items, ("center", "-" * 32, ""),
                *self.totals(subtotal), count, self.stamp(), ("center", self.words["thanks"], "")]

    def invoice(self) -> list[tuple]:
        w, rng = self.words, self.rng
        number = f"{w['invoice']} {self.day.year}-{rng.randrange(100, 9999)}"
        head = self.header()
        head = [h for h in head if h[1] not in ("WELCOME TO", "Willkommen bei", "*** ***")]
        rows = [("title", self.merchant, number), *head[1:], ("lr", "", f"{w['date']} {self.date()}"),
                ("lr", "", ""), ("bold", f"{w['items']}", f"{w['amount']}")]
        items, subtotal = self.lines_for(w["services"], rng.randrange(2, 5))
        return [*rows, *items, ("lr", "", ""), *self.totals(subtotal)]


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    for folder in FONT_DIRS:
        try:
            return ImageFont.truetype(f"{folder}{name}.ttf", size)
        except OSError:
            continue
    raise OSError(f"font {name} not found in {FONT_DIRS}")


def _draw(rng: random.Random, rows: list[tuple], *, wide: bool) -> Image.Image:
    """Print the rows on paper: a 576-dot thermal slip (80 mm at 203 dpi) or an A4 page at 150 dpi."""
    width = 1240 if wide else rng.choice([512, 576])
    size = rng.randrange(22, 28) if wide else rng.randrange(21, 26)
    family = SANS_FONTS if wide or rng.random() < 0.3 else MONO_FONTS
    name = rng.choice(sorted(family))
    regular, bold, title = _font(name, size), _font(family[name], size + 2), _font(family[name], size + 8)
    line = int(size * rng.uniform(1.35, 1.6))
    margin = 60 if wide else 18
    height = margin * 2 + line * (len(rows) + 2) + 20
    paper_tone = rng.randrange(232, 252)
    paper = Image.new("RGB", (width, height), (paper_tone, paper_tone - rng.randrange(0, 8), paper_tone - 12))
    draw = ImageDraw.Draw(paper)
    ink = (rng.randrange(10, 110),) * 3  # up to a faded thermal print
    y = margin
    for kind, left, right in rows:
        font = {"title": title, "bold": bold}.get(kind, regular)
        if kind in ("center", "title") and not wide:
            draw.text(((width - draw.textlength(left, font=font)) / 2, y), left, font=font, fill=ink)
        else:
            draw.text((margin, y), left, font=font, fill=ink)
        if right:
            draw.text((width - margin - draw.textlength(right, font=font), y), right, font=font, fill=ink)
        y += line + (8 if kind == "title" else 0)
    return paper


def _photograph(rng: random.Random, paper: Image.Image) -> Image.Image:
    """Photograph the paper: on a table, tilted, shaded, blurred, noisy, JPEG-compressed."""
    wood, slate, linen, desk = (110, 80, 55), (60, 62, 66), (150, 140, 125), (40, 45, 52)
    table = tuple(max(0, tone + rng.randrange(-15, 16)) for tone in rng.choice([wood, slate, linen, desk]))
    pad_x, pad_y = int(paper.width * rng.uniform(0.08, 0.3)), int(paper.height * rng.uniform(0.05, 0.15))
    photo = Image.new("RGB", (paper.width + 2 * pad_x, paper.height + 2 * pad_y), table)
    photo.paste(paper, (pad_x, pad_y))
    photo = photo.rotate(rng.uniform(-3, 3), resample=Image.Resampling.BICUBIC, expand=False, fillcolor=table)
    # The middle of a turned gradient twice its size, so that no corner of it is left black.
    shadow = Image.linear_gradient("L").resize((512, 512)).rotate(rng.uniform(0, 360))
    shadow = shadow.crop((128, 128, 384, 384)).resize(photo.size)
    darkest = rng.uniform(0.45, 0.95)
    shade = shadow.point(lambda v: int(255 * (darkest + (1 - darkest) * v / 255)))
    if rng.random() < 0.3:  # the phone's own shadow, soft-edged, over a corner
        corner = rng.choice([(0, 0), (photo.width, 0), (0, photo.height), (photo.width, photo.height)])
        radius = rng.uniform(0.3, 0.6) * max(photo.size)
        hand = ImageDraw.Draw(shade)
        hand.ellipse([corner[0] - radius, corner[1] - radius, corner[0] + radius, corner[1] + radius],
                     fill=rng.randrange(110, 180))
        shade = shade.filter(ImageFilter.GaussianBlur(20))
    photo = Image.composite(photo, Image.new("RGB", photo.size), shade)
    scale = rng.uniform(0.75, 1.8) if paper.width < 1000 else rng.uniform(0.8, 1.4)
    photo = photo.resize((int(photo.width * scale), int(photo.height * scale)), Image.Resampling.BICUBIC)
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))
    noise = Image.frombytes("L", photo.size, rng.randbytes(photo.width * photo.height)).convert("RGB")
    photo = Image.blend(photo, noise, rng.uniform(0.03, 0.1))
    photo = ImageEnhance.Contrast(photo).enhance(rng.uniform(0.8, 1.1))
    return _jpeg(photo, rng.randrange(35, 91))


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


if __name__ == "__main__":  # python tests/receipt_images.py SEED FILE: one receipt photo, for the demo
    import sys

    with open(sys.argv[2], "wb") as out:
        out.write(make_receipt(int(sys.argv[1])).image)
