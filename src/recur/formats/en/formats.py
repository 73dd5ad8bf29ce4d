"""English date formats for the seller's pages (Django's FORMAT_MODULE_PATH).

Django's "en" short format is the US numeric 12/03/2026, which a European reader takes for
12 March; Recur's users are European as often as not, so the short form names the month:
"3 Dec 2026". The long form ("Dec. 3, 2026") and the input formats stay Django's.
"""

SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
