"""Printable invoices (R-KIND-2): ``render_invoice_pdf(invoice) -> bytes`` with ReportLab.

The PDF is in the billing contact's language (English or Dutch); amounts are
formatted with Babel from integer minor units, dates in the account's time zone.
Only ReportLab's built-in Helvetica is used, so nothing is fetched or installed
at run time.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from xml.sax.saxutils import escape

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from django.utils import translation
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from recur.core.money import currency_exponent

LANGUAGES = ("en", "nl")
LOCALES = {"en": "en_US", "nl": "nl_NL"}
INK = colors.HexColor("#1f2a37")
MUTED = colors.HexColor("#6b7785")
LINE = colors.HexColor("#e3e8ee")
BRAND = colors.HexColor("#2f5bea")


def invoice_language(invoice) -> str:
    lang = getattr(invoice.contact, "language", "") or "en"
    return lang if lang in LANGUAGES else "en"


def _winansi(text: str) -> str:
    """Helvetica covers WinAnsi: replace the narrow no-break space some locales use."""
    return text.replace("\u202f", "\u00a0")


def money(minor: int, currency: str, lang: str) -> str:
    amount = Decimal(int(minor)).scaleb(-currency_exponent(currency))
    return _winansi(format_currency(amount, currency, locale=LOCALES[lang]))


def day(value: dt.date | None, lang: str) -> str:
    return format_date(value, format="long", locale=LOCALES[lang]) if value else ""


def percent(rate, lang: str) -> str:
    """A rate in percent (a Decimal such as 21.000) → ``21%`` / ``5,5%``."""
    return f"{format_decimal(Decimal(rate).normalize(), locale=LOCALES[lang])}%"


def address_lines(invoice) -> list[str]:
    """The invoice's billing address, else the contact's address."""
    addr = invoice.billing_address if isinstance(invoice.billing_address, dict) else {}
    source = addr if any(addr.get(k) for k in ("address_line1", "city", "line1")) else None
    contact = invoice.contact

    def get(key: str) -> str:
        if source is not None:
            alias = {"address_line1": "line1", "address_line2": "line2"}.get(key)
            return str(source.get(key) or (source.get(alias) if alias else "") or "").strip()
        return str(getattr(contact, key, "") or "").strip()

    lines = [get("address_line1"), get("address_line2"),
             " ".join(p for p in (get("postal_code"), get("city")) if p), get("region"), get("country")]
    return [ln for ln in lines if ln]


def render_invoice_pdf(invoice) -> bytes:
    """One invoice as a PDF document."""
    from recur.notifications.services import account_settings, sender

    lang = invoice_language(invoice)
    with translation.override(lang):
        return _render(invoice, lang, sender(account_settings())[0])


def _render(invoice, lang: str, seller: str) -> bytes:
    cur = invoice.currency
    styles = {
        "title": ParagraphStyle("title", fontName="Helvetica-Bold", fontSize=20, leading=24, textColor=INK),
        "seller": ParagraphStyle("seller", fontName="Helvetica-Bold", fontSize=13, leading=16, textColor=BRAND),
        "label": ParagraphStyle("label", fontName="Helvetica", fontSize=8, leading=10, textColor=MUTED),
        "body": ParagraphStyle("body", fontName="Helvetica", fontSize=9.5, leading=13, textColor=INK),
        "bold": ParagraphStyle("bold", fontName="Helvetica-Bold", fontSize=9.5, leading=13, textColor=INK),
        "small": ParagraphStyle("small", fontName="Helvetica", fontSize=8, leading=11, textColor=MUTED),
        "num": ParagraphStyle("num", fontName="Helvetica", fontSize=9.5, leading=13, textColor=INK, alignment=TA_RIGHT),
    }

    def p(text: str, style: str = "body") -> Paragraph:
        return Paragraph(escape(_winansi(str(text))).replace("\n", "<br/>"), styles[style])

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm, bottomMargin=18 * mm,
        title=_("Invoice %(number)s") % {"number": invoice.number}, author=seller, creator="Recur",
    )
    width = doc.width - 12  # the frame keeps 6 pt of padding on each side
    story = []

    # Header: seller left, "Invoice" and its number right.
    head = Table([[p(seller, "seller"), p(_("Invoice"), "title")],
                  ["", p(invoice.number, "bold")]],
                 colWidths=[width * 0.55, width * 0.45])
    head.setStyle(TableStyle([("ALIGN", (1, 0), (1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                              ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    for cell in (head._cellvalues[0][1], head._cellvalues[1][1]):
        cell.style = ParagraphStyle("r", parent=cell.style, alignment=TA_RIGHT)
    story += [head, Spacer(1, 10 * mm)]

    # Bill to | dates.
    bill_to = [p(_("Bill to"), "label"), p(invoice.contact.name, "bold")]
    bill_to += [p(line) for line in address_lines(invoice)]
    if invoice.contact.email:
        bill_to.append(p(invoice.contact.email))
    facts = [
        (_("Invoice number"), invoice.number),
        (_("Issue date"), day(invoice.issue_date, lang)),
        (_("Due date"), day(invoice.due_date, lang)),
        (_("Payment terms"), str(invoice.get_payment_terms_display())),
        (_("Status"), str(invoice.get_status_display())),
    ]
    fact_rows = [[p(k, "label"), p(v, "num")] for k, v in facts]
    fact_table = Table(fact_rows, colWidths=[width * 0.2, width * 0.25])
    fact_table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                    ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                                    ("TOPPADDING", (0, 0), (-1, -1), 2)]))
    top = Table([[bill_to, fact_table]], colWidths=[width * 0.55, width * 0.45])
    top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                             ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    story += [top, Spacer(1, 10 * mm)]

    # Lines: the discount column only when a line has one, so quantity × price − discount + tax
    # visibly makes each line's amount.
    items = list(invoice.lines.all())
    discounts = any(ln.discount for ln in items)
    head = [_("Description"), _("Qty"), _("Unit price")] + ([_("Discount")] if discounts else []) + [_("Tax"), _("Amount")]
    rows = [[p(h, "label") for h in head]]
    for ln in items:
        name = ln.name
        if ln.period_start and ln.period_end:
            name += "\n" + _("Period: %(start)s – %(end)s") % {"start": day(ln.period_start, lang),
                                                                 "end": day(ln.period_end, lang)}
        tax = money(ln.tax, cur, lang)
        if ln.tax_rate:
            tax += f" ({percent(ln.tax_rate, lang)})"
        discount = [p("−" + money(ln.discount, cur, lang) if ln.discount else "—", "num")] if discounts else []
        rows.append([p(name), p(str(ln.quantity), "num"), p(money(ln.unit_price, cur, lang), "num"), *discount,
                     p(tax, "num"), p(money(ln.total, cur, lang), "num")])
    widths = [0.32, 0.06, 0.15, 0.14, 0.18, 0.15] if discounts else [0.44, 0.08, 0.16, 0.16, 0.16]
    lines = Table(rows, colWidths=[width * w for w in widths], repeatRows=1)
    lines.setStyle(TableStyle([
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK), ("LINEBELOW", (0, 1), (-1, -1), 0.4, LINE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 5), ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
        ("LEFTPADDING", (0, 0), (0, -1), 0), ("RIGHTPADDING", (-1, 0), (-1, -1), 0),
    ]))
    for c in range(1, len(head)):  # right-align the numeric headers
        lines._cellvalues[0][c].style = ParagraphStyle("rh", parent=styles["label"], alignment=TA_RIGHT)
    story += [lines, Spacer(1, 6 * mm)]

    # Totals.
    totals = [
        (_("Subtotal"), money(invoice.subtotal, cur, lang), "body"),
        (_("Tax"), money(invoice.tax, cur, lang), "body"),
        (_("Total"), money(invoice.total, cur, lang), "bold"),
        (_("Amount paid"), money(invoice.amount_paid, cur, lang), "body"),
        (_("Amount due"), money(invoice.amount_unpaid, cur, lang), "bold"),  # written off: may still be paid
    ]
    total_rows = [[p(k, s), p(v, "num" if s == "body" else "bold")] for k, v, s in totals]
    for row in total_rows:
        row[1].style = ParagraphStyle("rn", parent=row[1].style, alignment=TA_RIGHT)
    totals_table = Table(total_rows, colWidths=[width * 0.25, width * 0.2], hAlign="RIGHT")
    totals_table.setStyle(TableStyle([
        ("LINEABOVE", (0, 2), (-1, 2), 0.8, INK), ("LINEABOVE", (0, 4), (-1, 4), 0.8, INK),
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    story += [totals_table, Spacer(1, 10 * mm)]

    # Payment terms in words.
    if invoice.status == "paid":
        note = _("This invoice has been paid. Thank you!")
    elif invoice.status == "void":
        note = _("This invoice has been voided; nothing is due.")
    elif invoice.status == "uncollectible":
        note = _("%(amount)s is unpaid. It can still be paid, quoting invoice number %(number)s.") % {
            "amount": money(invoice.amount_unpaid, cur, lang), "number": invoice.number}
    else:
        note = _("Please pay %(amount)s by %(date)s, quoting invoice number %(number)s.") % {
            "amount": money(invoice.amount_due, cur, lang), "date": day(invoice.due_date, lang),
            "number": invoice.number}
    story.append(p(_("Payment terms"), "label"))
    story.append(p(note))
    story.append(Spacer(1, 4 * mm))
    story.append(p(_("Invoice %(number)s from %(seller)s") % {"number": invoice.number, "seller": seller}, "small"))
    doc.build(story)
    return buf.getvalue()
