<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{status}} {{title}}</title>
</head>
<body>
<h1>{{title}}</h1>
<p>{{text}}</p>
</body>
</html>
