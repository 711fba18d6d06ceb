"""CSV cells a spreadsheet will not run: text that begins with `=`, `+`, `-` or `@` (or a tab
or carriage return, which some spreadsheets skip before looking) is read as a formula by Excel,
LibreOffice and Google Sheets (OWASP, "CSV Injection"). Such a cell gets a leading apostrophe,
which they show as text. Numbers the portal writes itself (a negative amount) stay numbers:
escape only text that came from outside (keys, ids, memos, names)."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
