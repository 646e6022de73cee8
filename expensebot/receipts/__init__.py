"""Receipt photos read on this machine: the OCR engine (ocr.py) and the rules that find the fields (fields.py)."""
