#!/usr/bin/env python3
"""Generate two held-out PII evaluation sets, written by a separate session that did not see
the detector's code or the other sets (then committed; the detector was tuned on them after the
first measurement — see docs/guardrails.md):

  crates/guardrail/tests/data/heldout/pii_heldout_lookalikes.jsonl  - no personal data, many number-like tokens
  crates/guardrail/tests/data/heldout/pii_heldout_positives.jsonl   - one checksum/format-valid PII value each

Rerun:  .venv/bin/python scripts/pii_heldout/make_heldout.py
Deterministic (fixed seeds). Needs `phonenumbers` and `python-stdnum`.
Also writes the lookalike_checksum_report.jsonl beside them listing tokens in the
look-alike set that happen to pass some validator (for slicing results).
"""
import json
import os
import random
import re
import string
import sys
from collections import Counter

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import casrn, ean, iban as std_iban, isbn, issn, luhn, verhoeff
from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.es import ccc, dni, nie
from stdnum.eu import vat
from stdnum.fr import nir
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.us import ssn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from handwritten_lookalikes import HAND  # noqa: E402

OUT_DIR = os.path.join(HERE, "..", "..", "crates", "guardrail", "tests", "data", "heldout")
OUT_LOOK = os.path.join(OUT_DIR, "pii_heldout_lookalikes.jsonl")
OUT_POS = os.path.join(OUT_DIR, "pii_heldout_positives.jsonl")
OUT_REPORT = os.path.join(OUT_DIR, "lookalike_checksum_report.jsonl")

NB = "\u00a0"
NNB = "\u202f"
PHONE_REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "IN", "BR", "CA", "AU"]

# ---------------------------------------------------------------- validators
NINO_BAD1 = set("DFIQUV")
NINO_BAD2 = set("DFIQUVO")
NINO_BAD_PAIRS = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
NINO_ADMIN = {"OO", "CR", "FY", "MW", "NC", "PP", "PY", "PZ"}


def nino_valid(s):
    s = re.sub(r"\s", "", s).upper()
    return bool(re.fullmatch(r"[A-Z]{2}\d{6}[A-D]", s)) and s[0] not in NINO_BAD1 \
        and s[1] not in NINO_BAD2 and s[:2] not in NINO_BAD_PAIRS


EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")


def phone_valid(value, region):
    try:
        n = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(n) and phonenumbers.region_code_for_number(n) == region


PASSPORT_RE = {
    "US": r"[A-Z]\d{8}|\d{9}", "GB": r"\d{9}", "DE": r"[CFGHJK][CFGHJKLMNPRTVWXYZ0-9]{8}",
    "FR": r"\d{2}[A-Z]{2}\d{5}", "IN": r"[A-Z]\d{7}", "ES": r"[A-Z]{3}\d{6}", "IT": r"[A-Z]{2}\d{7}",
    "CA": r"[A-Z]{2}\d{6}", "AU": r"[A-Z]{1,2}\d{7}", "BR": r"[A-Z]{2}\d{6}",
}


def validate_value(kind, value, region=None):
    c = re.sub(r"[\s.\-/]", "", value)
    if kind == "phone":
        return phone_valid(value, region)
    if kind == "us_ssn":
        return ssn.is_valid(c) and c[:3] not in ("000", "666") and c[0] != "9"
    if kind == "credit_card":
        return c.isdigit() and 13 <= len(c) <= 19 and luhn.is_valid(c)
    if kind == "iban":
        return std_iban.is_valid(value)
    if kind == "email":
        return EMAIL_RE.fullmatch(value) is not None
    if kind == "uk_nino":
        return nino_valid(value)
    if kind == "de_tax_id":
        return idnr.is_valid(c)
    if kind == "fr_nir":
        return nir.is_valid(c)
    if kind == "es_dni":
        return dni.is_valid(c) or nie.is_valid(c)
    if kind == "it_fiscal_code":
        return codicefiscale.is_valid(c)
    if kind == "in_aadhaar":
        return aadhaar.is_valid(c)
    if kind == "in_pan":
        return pan.is_valid(c)
    if kind == "ca_sin":
        return sin.is_valid(c)
    if kind == "br_cpf":
        return cpf.is_valid(c)
    if kind == "eu_vat":
        return vat.is_valid(value)
    if kind == "passport":
        return re.fullmatch(PASSPORT_RE[region], value) is not None
    raise ValueError(kind)


# ---------------------------------------------------------------- scanner
def card_iin(s):
    """Issuer prefixes of the major card networks (with plausible lengths)."""
    L = len(s)
    return ((s[0] == "4" and L in (13, 16, 19)) or (51 <= int(s[:2]) <= 55 and L == 16)
            or (2221 <= int(s[:4]) <= 2720 and L == 16) or (s[:2] in ("34", "37") and L == 15)
            or ((s[:4] == "6011" or s[:2] == "65" or 644 <= int(s[:3]) <= 649) and 16 <= L <= 19)
            or (3528 <= int(s[:4]) <= 3589 and 16 <= L <= 19) or (s[:2] in ("36", "38") and L == 14)
            or (300 <= int(s[:3]) <= 305 and L == 14) or (s[:2] == "62" and 16 <= L <= 19))


def scan(text):
    """Return list of (kind, start, end, raw) for tokens that pass a validator.
    'strong' kinds are checksum/structure-valid IDs; 'phone' uses phonenumbers
    VALID leniency in each of the 10 regions; 'email' is a plain regex."""
    hits = []
    for m in re.finditer(r"\d+(?:[ \u00a0\u202f.\-/]\d+)*", text):
        groups = [(m.start() + g.start(), m.start() + g.end(), g.group()) for g in re.finditer(r"\d+", m.group())]
        for i in range(len(groups)):
            s = ""
            for j in range(i, min(len(groups), i + 8)):
                s += groups[j][2]
                if len(s) > 19:
                    break
                st, en = groups[i][0], groups[j][1]
                raw = text[st:en]
                L = len(s)
                if 13 <= L <= 19 and card_iin(s) and re.fullmatch(r"\d+(?:[ -]\d+)*", raw) and luhn.is_valid(s):
                    hits.append(("credit_card", st, en, raw))
                if L == 12 and re.fullmatch(r"\d{4}([ -]?)\d{4}\1\d{4}", raw) and aadhaar.is_valid(s):
                    hits.append(("in_aadhaar", st, en, raw))
                if L == 11:
                    if re.fullmatch(r"\d{3}(\.?)\d{3}\1\d{3}-?\d{2}", raw) and cpf.is_valid(s):
                        hits.append(("br_cpf", st, en, raw))
                    if re.fullmatch(r"\d{2}( ?)\d{3}\1\d{3}\1\d{3}", raw) and idnr.is_valid(s):
                        hits.append(("de_tax_id", st, en, raw))
                if L == 15 and re.fullmatch(r"\d(?: ?\d{2}){3}(?: ?\d{3}){2} ?\d{2}", raw) and nir.is_valid(s):
                    hits.append(("fr_nir", st, en, raw))
                if L == 9:
                    if re.fullmatch(r"\d{3}([ -]?)\d{3}\1\d{3}", raw) and sin.is_valid(s):
                        hits.append(("ca_sin", st, en, raw))
                    if re.fullmatch(r"\d{3}([- ])\d{2}\1\d{4}", raw) and ssn.is_valid(s):
                        hits.append(("us_ssn", st, en, raw))
    for m in re.finditer(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{1,4}){2,9}", text):
        toks = m.group().split(" ")
        for k in range(len(toks), 0, -1):
            cand = " ".join(toks[:k])
            if std_iban.is_valid(cand):
                hits.append(("iban", m.start(), m.start() + len(cand), cand))
                break
    for m in re.finditer(r"\b\d{8}[ -]?[A-Z]\b", text):
        if dni.is_valid(m.group().replace("-", "").replace(" ", "")):
            hits.append(("es_dni", m.start(), m.end(), m.group()))
    for m in re.finditer(r"\b[XYZ][ -]?\d{7}[ -]?[A-Z]\b", text):
        if nie.is_valid(re.sub(r"[ -]", "", m.group())):
            hits.append(("es_dni", m.start(), m.end(), m.group()))
    for m in re.finditer(r"\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b", text):
        if codicefiscale.is_valid(m.group()):
            hits.append(("it_fiscal_code", m.start(), m.end(), m.group()))
    for m in re.finditer(r"\b[A-Z]{5}\d{4}[A-Z]\b", text):
        if pan.is_valid(m.group()):
            hits.append(("in_pan", m.start(), m.end(), m.group()))
    for m in re.finditer(r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", text):
        if nino_valid(m.group()):
            hits.append(("uk_nino", m.start(), m.end(), m.group()))
    for m in re.finditer(r"\b(?:ATU|BE|DE|ES|FR|IT|NL|PL|PT|IE|SE|DK|FI|LU|CZ|EL|GB)[ ]?[0-9A-Z][0-9A-Z .]{5,17}", text):
        toks = m.group().split(" ")
        for k in range(len(toks), 0, -1):
            cand = " ".join(toks[:k]).rstrip(".")
            if len(re.sub(r"[ .]", "", cand)) >= 8 and vat.is_valid(cand):
                hits.append(("eu_vat", m.start(), m.start() + len(cand), cand))
                break
    for m in EMAIL_RE.finditer(text):
        hits.append(("email", m.start(), m.end(), m.group()))
    seen = set()
    for region in PHONE_REGIONS:
        for pm in PhoneNumberMatcher(text, region, leniency=Leniency.VALID):
            key = (pm.start, pm.end)
            if key in seen:
                continue
            seen.add(key)
            hits.append(("phone", pm.start, pm.end, pm.raw_string + " [" + region + "]"))
    return hits


STRONG = {"credit_card", "in_aadhaar", "br_cpf", "de_tax_id", "fr_nir", "ca_sin", "us_ssn", "iban",
          "es_dni", "it_fiscal_code", "in_pan", "uk_nino", "eu_vat", "email"}


# ---------------------------------------------------------------- small helpers
def digits(rng, n, first="0123456789"):
    return rng.choice(first) + "".join(rng.choice(string.digits) for _ in range(n - 1)) if n else ""


def lu(rng, lo, hi):
    """log-uniform float: small amounts are more common than huge ones"""
    import math
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def hexs(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def de_num(x, dec=2):  # 1.234,56
    s = f"{x:,.{dec}f}"
    return s.replace(",", "X").replace(".", ",").replace("X", ".")


def fr_num(x, dec=2, sep=NNB):  # 1 234,56
    s = f"{x:,.{dec}f}"
    return s.replace(",", sep).replace(".", ",")


def ch_num(x, dec=2):  # 1'234.56
    return f"{x:,.{dec}f}".replace(",", "'")


def in_group(n):  # 12,34,567
    s = str(int(n))
    if len(s) <= 3:
        return s
    head, tail = s[:-3], s[-3:]
    parts = []
    while len(head) > 2:
        parts.insert(0, head[-2:])
        head = head[:-2]
    if head:
        parts.insert(0, head)
    return ",".join(parts) + "," + tail


MONTHS = {
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"],
    "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre"],
    "pt": ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro", "novembro", "dezembro"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
}


def rdate(rng):
    return rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28)


# ================================================================ LOOK-ALIKE GENERATORS
def g_order_en(rng):
    y, m, d = rdate(rng)
    shapes = [
        lambda: f"{digits(rng,3,'1234')}-{digits(rng,7)}-{digits(rng,7)}",
        lambda: f"#{digits(rng,9,'123456789')}",
        lambda: f"A-{y}{m:02d}{d:02d}-{digits(rng,6)}",
        lambda: f"ORD-{digits(rng,5)}-{digits(rng,2)}",
        lambda: f"{digits(rng,4,'123456789')}-{digits(rng,4)}-{digits(rng,4)}",
        lambda: f"W{digits(rng,10)}",
        lambda: f"{rng.choice(['SO','PO','RMA'])}{digits(rng,7)}",
    ]
    o = rng.choice(shapes)()
    o2 = rng.choice(shapes)()
    price = f"${rng.randint(5, 4999)}.{rng.randint(0, 99):02d}"
    tpl = rng.choice([
        "Order {o} placed on {mon} {d}, {y} — total {p}. Estimated delivery: {d2} business days.",
        "re: {o} — still nothing?? it's been {d2} days and I paid {p}",
        "Hi team, can you merge {o} and {o2}? Same shipping address, combined total {p}.",
        "Your return for {o} has been approved. Refund of {p} will post within {d2}-{d3} business days (ref {o2}).",
        "Booking ref {o} confirmed for {d}/{m:02d}/{y}, {d2} guests, deposit {p}.",
        "Confirmation code {o}. Keep this for your records. Amount charged: {p}.",
        "case id {o} / parent {o2} — customer says the {p} charge appears twice",
    ])
    return "order_en", tpl.format(o=o, o2=o2, p=price, mon=MONTHS["en"][m - 1], d=d, m=m, y=y,
                                  d2=rng.randint(2, 14), d3=rng.randint(15, 30))


def g_order_de(rng):
    y, m, d = rdate(rng)
    nr = rng.choice([f"{y}-{digits(rng,6)}", f"{digits(rng,8,'123456789')}", f"AB-{digits(rng,4)}/{y % 100}",
                     f"VG{digits(rng,9)}", f"{digits(rng,3)}.{digits(rng,3)}.{digits(rng,3)}"])
    sendung = rng.choice([f"00340434{digits(rng,12)}", f"JJD{digits(rng,18)}", f"{digits(rng,4)} {digits(rng,4)} {digits(rng,4)}"])
    preis = de_num(rng.uniform(3, 9000)) + " €"
    tpl = rng.choice([
        "Ihre Bestellung Nr. {nr} vom {d:02d}.{m:02d}.{y} über {p} wurde versandt. Sendungsnummer: {s}.",
        "Vorgangsnummer {nr} – Ihre Reklamation ist eingegangen. Bearbeitungszeit ca. {k} Werktage.",
        "Rechnungsnummer {nr}, Rechnungsdatum {d}. {mon} {y}, Betrag {p}, zahlbar bis {d2:02d}.{m:02d}.{y}.",
        "Lieferschein {nr}: {k} Paletten, {kg} kg, Abholung {d:02d}.{m:02d}. zwischen 8 und 12 Uhr.",
        "Auftragsnummer {nr} – Status: in Zustellung. Paket {s} liegt in der Filiale {fil}.",
    ])
    return "order_de", tpl.format(nr=nr, d=d, m=m, y=y, p=preis, s=sendung, k=rng.randint(2, 12),
                                  mon=MONTHS["de"][m - 1], d2=min(28, d + 14), kg=de_num(rng.uniform(100, 9000), 1),
                                  fil=digits(rng, 3))


def g_order_fr(rng):
    y, m, d = rdate(rng)
    nr = rng.choice([f"{digits(rng,3)}-{digits(rng,7)}-{digits(rng,7)}", f"FR{digits(rng,10)}", f"CMD-{y}-{digits(rng,5)}",
                     f"{digits(rng,2)} {digits(rng,3)} {digits(rng,3)}"])
    suivi = rng.choice([f"6A{digits(rng,11)}", f"{digits(rng,2)}{rng.choice('ABCDEFGH')}{rng.choice('ABCDEFGH')}{digits(rng,9)}FR",
                        f"{digits(rng,4)} {digits(rng,4)} {digits(rng,4)} {digits(rng,2)}"])
    prix = fr_num(rng.uniform(5, 5000), sep=rng.choice([NB, NNB, " "])) + NB + "€"
    tpl = rng.choice([
        "Votre numéro de commande {nr} du {d} {mon} {y} ({p}) a été expédié. N° de suivi : {s}.",
        "Bonjour, je n'ai toujours pas reçu la commande {nr}. Montant débité : {p} le {d:02d}/{m:02d}/{y}.",
        "Référence dossier {nr} — le remboursement de {p} sera effectué sous {k} jours ouvrés.",
        "Facture n° {nr} du {d:02d}/{m:02d}/{y} : total TTC {p}, dont TVA 20{nb}% incluse.",
        "Colis {s} : livraison prévue le {d} {mon} entre {h}h et {h2}h.",
    ])
    return "order_fr", tpl.format(nr=nr, d=d, m=m, y=y, p=prix, s=suivi, mon=MONTHS["fr"][m - 1], k=rng.randint(3, 14),
                                  nb=NB, h=rng.randint(8, 13), h2=rng.randint(14, 19))


def g_order_es(rng):
    y, m, d = rdate(rng)
    nr = rng.choice([f"{digits(rng,4)}-{digits(rng,4)}-{digits(rng,2)}", f"ES-{y}-{digits(rng,6)}", f"{digits(rng,10)}",
                     f"PED{digits(rng,8)}"])
    loc = "".join(rng.choice(string.ascii_uppercase + "23456789") for _ in range(6))
    precio = de_num(rng.uniform(5, 6000)) + " €"
    tpl = rng.choice([
        "Tu pedido {nr} del {d} de {mon} de {y} ya está en camino. Importe: {p}. Entrega estimada en {k} días.",
        "Localizador {loc} — vuelo {fl} salida {h:02d}:{mi:02d}, llegada {h2:02d}:{mi2:02d}, asiento {row}{seat}.",
        "Albarán nº {nr}, {k} bultos, {kg} kg. Recogida el {d:02d}/{m:02d}/{y}.",
        "Factura {nr} con fecha {d:02d}/{m:02d}/{y}: base imponible {p}, IVA 21 %.",
        "Número de seguimiento {tr}. Estado: en reparto. Franja horaria {h}:00–{h2}:00.",
    ])
    return "order_es", tpl.format(nr=nr, d=d, m=m, y=y, p=precio, mon=MONTHS["es"][m - 1], k=rng.randint(2, 9), loc=loc,
                                  fl=f"{rng.choice(['IB','VY','UX'])}{digits(rng,4,'123456789')}", h=rng.randint(6, 12),
                                  mi=rng.randint(0, 59), h2=rng.randint(13, 21), mi2=rng.randint(0, 59),
                                  row=rng.randint(1, 33), seat=rng.choice("ABCDEF"), kg=de_num(rng.uniform(1, 900), 1),
                                  tr=f"PK{digits(rng,3)}{rng.choice('ABC')}{digits(rng,8)}")


def g_order_it(rng):
    y, m, d = rdate(rng)
    nr = rng.choice([f"{y}/{digits(rng,5)}", f"IT{digits(rng,9)}", f"{digits(rng,3)}-{digits(rng,6)}", f"ORD{digits(rng,7)}"])
    prezzo = de_num(rng.uniform(5, 7000)) + " €"
    tpl = rng.choice([
        "Ordine n. {nr} del {d} {mon} {y}: totale {p}, spedizione tramite corriere, tracking {tr}.",
        "Pratica n. {nr} — la richiesta di reso è stata accettata, rimborso di {p} entro {k} giorni lavorativi.",
        "Fattura {nr} del {d:02d}/{m:02d}/{y}, imponibile {p}, IVA 22%, scadenza a {gg} gg d.f.",
        "Biglietto {tr}, treno {tn}, partenza ore {h:02d}:{mi:02d}, carrozza {c}, posto {s}{l}.",
        "Buongiorno, il pacco {tr} risulta in giacenza dal {d:02d}/{m:02d}. Codice ritiro {cr}.",
    ])
    return "order_it", tpl.format(nr=nr, d=d, m=m, y=y, p=prezzo, mon=MONTHS["it"][m - 1], k=rng.randint(5, 30),
                                  tr=rng.choice([f"{digits(rng,3)}{rng.choice('ABCD')}{digits(rng,9)}", f"{digits(rng,13)}"]),
                                  gg=rng.choice([30, 60, 90]), tn=f"FR {digits(rng,4,'9')}", h=rng.randint(5, 22),
                                  mi=rng.randint(0, 59), c=rng.randint(1, 11), s=rng.randint(1, 20), l=rng.choice("ABCD"),
                                  cr=digits(rng, 6))


def g_order_pt(rng):
    y, m, d = rdate(rng)
    nr = rng.choice([f"{digits(rng,4)}-{digits(rng,3)}-{digits(rng,3)}", f"BR{digits(rng,9)}", f"#{digits(rng,7)}"])
    rast = f"{''.join(rng.choice(string.ascii_uppercase) for _ in range(2))}{digits(rng,9)}BR"
    v = rng.uniform(20, 9000)
    n = rng.choice([2, 3, 5, 10, 12])
    tpl = rng.choice([
        "Pedido {nr} confirmado em {d:02d}/{m:02d}/{y}. Total R$ {v} em {n}x de R$ {parc} sem juros.",
        "Código de rastreio {r}: objeto postado em {d:02d}/{m:02d}, previsão de entrega em {k} dias úteis.",
        "Nota fiscal nº {nf}, série {s}, valor R$ {v}, emitida em {d} de {mon} de {y}.",
        "Olá! Seu pedido {nr} saiu para entrega. Valor do frete: R$ {fr}.",
        "Boleto com vencimento {d:02d}/{m:02d}/{y}, valor R$ {v}, nosso número {nn}.",
    ])
    return "order_pt", tpl.format(nr=nr, d=d, m=m, y=y, v=de_num(v), n=n, parc=de_num(v / n), r=rast, k=rng.randint(3, 12),
                                  nf=f"{digits(rng,3)}.{digits(rng,3)}", s=rng.randint(1, 9), mon=MONTHS["pt"][m - 1],
                                  fr=de_num(rng.uniform(5, 90)), nn=f"{digits(rng,8)}-{rng.randint(0,9)}")


def g_hinglish(rng):
    amt = int(lu(rng, 1000, 99999999))
    tpl = rng.choice([
        "Bhai order {o} abhi tak nahi aaya, ₹{a2} kat gaye account se {d} din pehle.",
        "PNR {pnr} confirm ho gaya, train {tr}, coach {c}{cn}, berth {b}. Departure {h:02d}:{mi:02d}.",
        "Kal ki meeting {h}:30 baje, budget ₹{a} tak approve hai, invoice no. {inv} bhej dena.",
        "Flipkart se {o} return request daala, refund ₹{a2} {d}-{d2} din mein aayega bol rahe.",
        "Yaar electricity bill ₹{a2} aaya, consumer no. {cons}, due date {d:02d}/{m:02d}/{y}.",
        "GST invoice {inv} ka total ₹{a} hai including 18% GST, HSN {hsn}.",
    ])
    y, m, dd = rdate(rng)
    return "chat_hinglish", tpl.format(o=rng.choice([f"OD{digits(rng,18)}", f"{digits(rng,3)}-{digits(rng,7)}-{digits(rng,7)}"]),
                                       a=in_group(amt), a2=in_group(rng.randint(100, 99999)), d=rng.randint(2, 7),
                                       d2=rng.randint(8, 12), pnr=digits(rng, 10, "2345678"), tr=digits(rng, 5, "1"),
                                       c=rng.choice(["B", "S", "A"]), cn=rng.randint(1, 12), b=rng.randint(1, 72),
                                       h=rng.randint(5, 23), mi=rng.randint(0, 59), inv=f"GST/{y}-{(y + 1) % 100}/{digits(rng,4)}",
                                       cons=digits(rng, 12, "1"), m=m, y=y, hsn=digits(rng, 8, "123456789"))


def g_tracking(rng):
    tpl = rng.choice([
        "AWB {awb} — {pcs} pcs, {kg} kg, routed {a1}→{a2}, flight {fl} on {d:02d}{mon}.",
        "UPS {ups} | FedEx {fx} | USPS {usps}",
        "Tracking: {usps}. Last scan: {city} hub, {d:02d}/{m:02d} {h:02d}:{mi:02d}.",
        "Consignment {cn} split into 3 shipments: {fx}, {fx2} and one still pending.",
        "Royal Mail tracked {rm}: delivered, signed at {h:02d}:{mi:02d}.",
        "shipment {sh}, container {cont}, B/L {bl}, ETA port {d:02d}.{m:02d}.",
    ])
    serial = rng.randint(1000000, 9999999)
    y, m, d = rdate(rng)
    return "tracking", tpl.format(awb=f"{rng.choice(['020','176','057','074','125','016'])}-{serial}{serial % 7}",
                                  pcs=rng.randint(1, 40), kg=f"{rng.uniform(1, 3000):.1f}", a1=rng.choice(["FRA", "LHR", "CDG", "MAD"]),
                                  a2=rng.choice(["JFK", "BOM", "GRU", "YYZ", "SYD"]), fl=f"{rng.choice(['LH','BA','AF'])}{digits(rng,4,'1234')}",
                                  d=d, mon=rng.choice(["JAN", "FEB", "MAR", "APR", "MAY", "JUN"]), m=m, h=rng.randint(0, 23),
                                  mi=rng.randint(0, 59), ups=f"1Z{''.join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6))}{digits(rng,10)}",
                                  fx=f"{digits(rng,4,'7')} {digits(rng,4)} {digits(rng,4)}", fx2=f"{digits(rng,12,'7')}",
                                  usps=f"9400 {digits(rng,4)} {digits(rng,4)} {digits(rng,4)} {digits(rng,4)} {digits(rng,2)}",
                                  city=rng.choice(["Memphis", "Leipzig", "Louisville", "Köln"]), cn=f"CN{digits(rng,9)}",
                                  rm=f"{''.join(rng.choice(string.ascii_uppercase) for _ in range(2))}{digits(rng,9)}GB",
                                  sh=f"SHP-{y}-{digits(rng,6)}", cont=f"{rng.choice(['MSCU','MAEU','CMAU','HLXU'])}{digits(rng,7)}",
                                  bl=f"{rng.choice(['HLCU','MEDU'])}{digits(rng,9)}")


def g_prices(rng):
    x = lu(rng, 1, 2_000_000)
    def forms_for(x):
        return [
        de_num(x) + " €", fr_num(x, sep=NB) + NB + "€", fr_num(x, sep=" ") + " €", f"€{x:,.2f}", f"${x:,.2f}",
        f"£{x:,.2f}", f"CHF {ch_num(x)}", f"₹{in_group(x)}.{int(x * 100) % 100:02d}", f"R$ {de_num(x)}",
        f"¥{int(x):,}", f"{de_num(x)} kr.", f"US$ {x:,.0f}", f"{fr_num(x, sep=NNB)}{NB}$ CA", f"{x:,.2f} AUD",
        ]
    i = rng.randrange(14)
    a, b = forms_for(x)[i], forms_for(x * rng.uniform(0.6, 0.95))[i]
    tpl = rng.choice([
        "Angebot: {a} netto, alternativ {b} inkl. Versand.",
        "The quote came back at {a}; after the discount it's {b}.",
        "Prix public conseillé : {a} ; prix remisé : {b}",
        "Precio final {b}; en la otra tienda lo vi a {a}.",
        "Totale {b}, sconto applicato, prezzo pieno {a}.",
        "Fatura: {a}; valor pago até agora {b}.",
        "Budget ka estimate {a} hai, vendor ne {b} quote kiya.",
        "| item | price |\n|---|---|\n| license | {a} |\n| support | {b} |",
    ])
    return "prices", tpl.format(a=a, b=b, pc=rng.randint(5, 40))


def g_quantities(rng):
    n = int(lu(rng, 10_000, 99_999_999))
    m = int(n * rng.uniform(0.05, 0.95))
    loc = rng.choice(["de", "fr", "en", "es", "it", "ch", "in", "pt"])
    fmt = {"de": lambda v: f"{v:,}".replace(",", "."), "fr": lambda v: f"{v:,}".replace(",", rng.choice([NNB, NB, " "])),
           "en": lambda v: f"{v:,}", "es": lambda v: f"{v:,}".replace(",", "."), "it": lambda v: f"{v:,}".replace(",", "."),
           "ch": lambda v: f"{v:,}".replace(",", "'"), "in": in_group, "pt": lambda v: f"{v:,}".replace(",", ".")}[loc]
    tpl = {"de": ["Das Rechenzentrum verarbeitete {a} Anfragen, davon {b} aus dem Cache.", "Stückzahl: {a}; davon Ausschuss: {b}."],
           "ch": ["Im Jahr 2023 zählte der Kanton {a} Logiernächte, davon {b} im Sommer.", "Lagerbestand: {a} Stk., reserviert {b} Stk."],
           "fr": ["Le fichier contient {a} lignes, dont {b} doublons.", "Le serveur a traité {a} requêtes, dont {b} en cache."],
           "en": ["We processed {a} events yesterday vs {b} the day before.", "Total log-in attempts: {a} (failed: {b})."],
           "es": ["La tabla pasó de {b} a {a} registros tras la migración.", "Se procesaron {a} transacciones, {b} de ellas online."],
           "it": ["Il dataset ha {a} righe, di cui {b} duplicate.", "Nel 2023 il porto ha movimentato {a} tonnellate ({b} in container)."],
           "in": ["Total registrations {a}, out of which {b} verified.", "Portal pe {a} hits aaye, {b} mobile se."],
           "pt": ["A plataforma registrou {a} acessos no mês, {b} pelo celular.", "Foram {a} downloads, {b} só em dezembro."]}[loc]
    return "quantities", rng.choice(tpl).format(a=fmt(n), b=fmt(m))


def g_dates(rng):
    y, m, d = rdate(rng)
    h, mi = rng.randint(0, 23), rng.randint(0, 59)
    lang = rng.choice(["de", "fr", "es", "it", "pt", "en", "in", "iso"])
    if lang == "de":
        t = rng.choice([f"Am {d}. {MONTHS['de'][m-1]} {y} um {h}:{mi:02d} Uhr findet die Wartung statt (Dauer ca. {rng.randint(2,6)} Std.).",
                        f"Fristende: {d:02d}.{m:02d}.{y}, 24:00 Uhr. Eingang bei uns bis {d:02d}.{m:02d}.{y % 100:02d}.",
                        f"Zeitraum {d:02d}.{m:02d}.–{min(28,d+7):02d}.{m:02d}.{y}, KW {rng.randint(1,52)}."])
    elif lang == "fr":
        t = rng.choice([f"Rendez-vous le {d} {MONTHS['fr'][m-1]} {y} à {h} h {mi:02d}, salle {rng.randint(100,450)}.",
                        f"Période du {d:02d}/{m:02d}/{y} au {min(28,d+10):02d}/{m:02d}/{y} inclus.",
                        f"Mis à jour le {d:02d}/{m:02d}/{y} à {h:02d}h{mi:02d}."])
    elif lang == "es":
        t = rng.choice([f"La cita es el {d} de {MONTHS['es'][m-1]} de {y} a las {h}:{mi:02d} h.",
                        f"Fecha de emisión: {d:02d}-{m:02d}-{y}; válido hasta el {d:02d}-{m:02d}-{y+1}."])
    elif lang == "it":
        t = rng.choice([f"L'appuntamento è fissato per il {d} {MONTHS['it'][m-1]} {y} alle ore {h}:{mi:02d}.",
                        f"Dal {d:02d}/{m:02d}/{y} al {min(28,d+5):02d}/{m:02d}/{y}, orario {h}:00–{min(23,h+3)}:00."])
    elif lang == "pt":
        t = rng.choice([f"A reunião será no dia {d} de {MONTHS['pt'][m-1]} de {y}, às {h}h{mi:02d}.",
                        f"Vigência: {d:02d}/{m:02d}/{y} a {d:02d}/{m:02d}/{y+1}."])
    elif lang == "in":
        t = rng.choice([f"Meeting {d} {MONTHS['en'][m-1]} {y} ko {h % 12 or 12}:{mi:02d} {'AM' if h < 12 else 'PM'} IST pe shift ho gayi hai.",
                        f"Exam date {d:02d}-{m:02d}-{y}, reporting time {h % 12 or 12}:{mi:02d}, centre code {digits(rng,4)}, rooms {rng.randint(1,20)}–{rng.randint(21,40)}."])
    elif lang == "en":
        t = rng.choice([f"Scheduled for {MONTHS['en'][m-1]} {d}, {y} at {h % 12 or 12}:{mi:02d} {'a.m.' if h < 12 else 'p.m.'} ET.",
                        f"Valid {m:02d}/{d:02d}/{y} through {m:02d}/{d:02d}/{y+2}."])
    else:
        t = rng.choice([f"created_at={y}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{rng.randint(0,59):02d}.{digits(rng,3)}+0{rng.randint(0,5)}:00 epoch={rng.randint(1550000000, 1740000000)}",
                        f"{y}{m:02d}{d:02d}T{h:02d}{mi:02d}00Z – {y}{m:02d}{min(28,d+1):02d}T{h:02d}{mi:02d}00Z"])
    return "dates_" + lang, t


def g_durations(rng):
    t = rng.choice([
        f"uptime {rng.randint(1,400)} days, {rng.randint(0,23):02d}:{rng.randint(0,59):02d}:{rng.randint(0,59):02d}",
        f"Laufzeit: {rng.randint(0,9)}:{rng.randint(0,59):02d}:{rng.randint(0,59):02d},{digits(rng,3)} h, davon Wartezeit {rng.randint(1,59)} min",
        f"ETA {rng.randint(1,12)}h {rng.randint(0,59):02d}m — {rng.randint(10,999)} km restants, moyenne {rng.randint(60,130)} km/h",
        f"real\t{rng.randint(0,59)}m{rng.randint(0,59)}.{digits(rng,3)}s\nuser\t{rng.randint(0,59)}m{rng.randint(0,59)}.{digits(rng,3)}s\nsys\t0m{rng.randint(0,9)}.{digits(rng,3)}s",
        (lambda k: f"Marathon splits: 5 km {k*5//60}:{k*5%60:02d}, half {k*21//3600}:{k*21//60%60:02d}:{k*21%60:02d}, finish {k*42+rng.randint(0,300)//3600 if False else (k*42+90)//3600}:{(k*42+90)//60%60:02d}:{(k*42+90)%60:02d}")(rng.randint(250, 420)),
        f"P{rng.randint(1,3)}Y{rng.randint(1,11)}M{rng.randint(1,28)}DT{rng.randint(1,23)}H{rng.randint(1,59)}M is the ISO 8601 duration we store.",
    ])
    return "durations", t


def g_versions(rng):
    a, b, c = rng.randint(0, 25), rng.randint(0, 40), rng.randint(0, 300)
    t = rng.choice([
        f"Linux host-{rng.randint(1,99):02d} {rng.choice([4,5,6])}.{rng.randint(1,19)}.{rng.randint(0,200)}-{rng.randint(1,150)}-generic #{rng.randint(100,200)}-Ubuntu SMP",
        f"Requires {rng.choice(['libssl','libcurl','zlib'])} >= {a}.{b}.{c}, tested with {a}.{b}.{c+1} and {a}.{b+1}.0-rc.{rng.randint(1,5)}",
        f"Chrome/{rng.randint(100,130)}.0.{rng.randint(4000,7000)}.{rng.randint(10,250)} Safari/537.36",
        f"apt: {rng.choice(['nginx','postgresql-16','redis-server'])} {a}.{b}.{c}-{rng.randint(1,9)}ubuntu{rng.randint(0,3)}.{rng.randint(1,20)} amd64",
        f"firmware {a}.{b}.{c}.{rng.randint(1000,9999)} → {a}.{b}.{c+2}.{rng.randint(1000,9999)} (bootloader {rng.randint(1,9)}.{rng.randint(0,9)}{rng.randint(0,9)})",
        f"\"dependencies\": {{\"react\": \"^{rng.randint(16,19)}.{rng.randint(0,14)}.{rng.randint(0,9)}\", \"typescript\": \"~5.{rng.randint(0,5)}.{rng.randint(2,4)}\"}}",
        f"go version go1.{rng.randint(18,23)}.{rng.randint(0,12)} linux/amd64; module v{a}.{b}.{c}-{rng.randint(2019,2025)}{rng.randint(1,12):02d}{rng.randint(1,28):02d}{rng.randint(0,23):02d}{rng.randint(0,59):02d}{rng.randint(0,59):02d}-{hexs(rng,12)}",
        f"Windows 11 {rng.choice(['23H2','24H2'])} (OS Build 2263{rng.randint(0,1)}.{rng.randint(1000,4500)})",
    ])
    return "versions", t


def g_build(rng):
    y, m, d = rdate(rng)
    t = rng.choice([
        f"Build #{rng.randint(1000,99999)} ({rng.choice(['main','release/4.2','develop'])}@{hexs(rng,7)}) finished in {rng.randint(1,59)}m {rng.randint(0,59)}s",
        f"docker push ghcr.io/acme/{rng.choice(['api','web','worker'])}:{y}.{m}.{d}-{rng.randint(1,999)}-g{hexs(rng,7)}",
        f"pipeline {rng.randint(100000,999999)} › job {rng.randint(1000000,9999999)} › stage test ({rng.randint(1,20)}/{rng.randint(21,40)})",
        f"Artifact: app-{y}.{m:02d}.{d:02d}.{rng.randint(1000,2359)}.apk, versionCode {rng.randint(100000,999999)}",
        f"CFBundleVersion {rng.randint(1,9)}.{rng.randint(0,30)}.{rng.randint(0,9)} ({y % 100}{m:02d}{d:02d}{rng.randint(1,9)})",
    ])
    return "build_numbers", t


def g_hashes(rng):
    def uuid():
        return f"{hexs(rng,8)}-{hexs(rng,4)}-4{hexs(rng,3)}-{rng.choice('89ab')}{hexs(rng,3)}-{hexs(rng,12)}"
    acct = digits(rng, 12, "0123456789")
    t = rng.choice([
        f"commit {hexs(rng,40)}\nAuthor: ci-bot\nDate:   {rng.choice(['Mon','Tue','Wed','Thu','Fri'])} Mar {rng.randint(1,28)} {rng.randint(0,23):02d}:{rng.randint(0,59):02d}:{rng.randint(0,59):02d} 2024 +0000",
        f"X-Request-ID: {uuid()}\nX-Correlation-ID: {uuid()}",
        f"arn:aws:iam::{acct}:role/{rng.choice(['deploy','readonly','lambda-exec'])}",
        f"Launched i-{hexs(rng,17)} from ami-{hexs(rng,17)} in subnet-{hexs(rng,17)} (sg-{hexs(rng,17)})",
        f"sha1 {hexs(rng,40)}  sha256 {hexs(rng,64)}",
        f"/subscriptions/{uuid()}/resourceGroups/rg-prod-weu/providers/Microsoft.Web/sites/app-{rng.randint(100,999)}",
        f"Etag: \"{hexs(rng,32)}\"; Last-Modified: {rng.choice(['Mon','Tue','Wed'])}, {rng.randint(1,28):02d} Feb 2024 {rng.randint(0,23):02d}:{rng.randint(0,59):02d}:{rng.randint(0,59):02d} GMT",
        f"merged {hexs(rng,7)}..{hexs(rng,7)} into main; cherry-picked {hexs(rng,12)} onto release/{rng.randint(1,9)}.{rng.randint(0,20)}",
    ])
    return "hashes_ids", t


def g_ip(rng):
    def priv():
        return rng.choice([f"10.{rng.randint(0,255)}.{rng.randint(0,255)}.{rng.randint(1,254)}",
                           f"192.168.{rng.randint(0,255)}.{rng.randint(1,254)}",
                           f"172.{rng.randint(16,31)}.{rng.randint(0,255)}.{rng.randint(1,254)}",
                           f"192.0.2.{rng.randint(1,254)}", f"198.51.100.{rng.randint(1,254)}", f"203.0.113.{rng.randint(1,254)}"])
    t = rng.choice([
        f"upstream backend {{ server {priv()}:{rng.randint(1024,65535)}; server {priv()}:{rng.randint(1024,65535)} backup; }}",
        f"iptables -A INPUT -s {priv().rsplit('.', 1)[0]}.0/24 -p tcp --dport {rng.choice([22,443,5432,8080])} -j ACCEPT",
        (lambda n: f"ip addr: inet {n}.{rng.randint(2,254)}/24 brd {n}.255 scope global eth0; gateway {n}.1, DNS {priv()}")(priv().rsplit(".", 1)[0]),
        f"Connection refused to {priv()}:{rng.randint(1024,65535)} after {rng.randint(1,30)} retries (timeout {rng.randint(1,30)}s)",
        f"VPN split tunnel routes: {rng.choice(['10.' + str(rng.randint(0, 255)), '172.' + str(rng.randint(16, 31)), '192.168'])}.0.0/16, {priv().rsplit('.', 1)[0]}.0/24; netmask 255.255.{rng.choice([0,240,252])}.0",
        "nmap scan report for {}\nPORT     STATE SERVICE\n{}/tcp open  {}".format(priv(), *rng.choice([(22, "ssh"), (80, "http"), (443, "https"), (5432, "postgresql")])),
    ])
    return "ip_private", t


def g_mac(rng):
    def mac(sep=":"):
        return sep.join(hexs(rng, 2) for _ in range(6))
    t = rng.choice([
        f"link/ether {mac()} brd ff:ff:ff:ff:ff:ff",
        f"DHCP reservation: {mac('-').upper()} → 192.168.{rng.randint(0,10)}.{rng.randint(2,250)}",
        f"Interface Gi0/{rng.randint(1,48)}  {'.'.join(hexs(rng,4) for _ in range(3))}  DYNAMIC  VLAN {rng.randint(1,4094)}",
        "wlan0: associated with BSSID {} (channel {}, {} MHz, signal -{} dBm)".format(mac(), *rng.choice([(1, 2412), (6, 2437), (11, 2462), (36, 5180), (44, 5220), (149, 5745)]), rng.randint(30, 85)),
    ])
    return "mac_address", t


def g_csv(rng):
    kind = rng.randint(0, 3)
    if kind == 0:
        rows = ["sku,qty,unit_price,warehouse"] + [f"{rng.choice('ABCXYZ')}{digits(rng,2)}-{digits(rng,4)}-{digits(rng,2)},{rng.randint(1,5000)},{rng.uniform(0.1,999):.2f},WH{rng.randint(1,9)}" for _ in range(3)]
    elif kind == 1:
        rows = ["timestamp;sensor;value;unit"] + [f"2024-0{rng.randint(1,9)}-{rng.randint(10,28)} {rng.randint(10,23)}:{rng.randint(10,59)}:{rng.randint(10,59)};S-{digits(rng,4)};{de_num(rng.uniform(-20,400),3)};{rng.choice(['°C','kPa','rpm'])}" for _ in range(3)]
    elif kind == 2:
        rows = ["invoice_no,date,net,vat,gross"] + [f"INV-{digits(rng,6)},{rng.randint(2020,2024)}-{rng.randint(1,12):02d}-{rng.randint(1,28):02d},{(n := rng.uniform(10,9000)):.2f},{n*0.19:.2f},{n*1.19:.2f}" for _ in range(3)]
    else:
        rows = ["match_id\tround\thome\taway\tscore\tattendance"] + [f"{digits(rng,7)}\t{rng.randint(1,34)}\tT{rng.randint(1,18)}\tT{rng.randint(1,18)}\t{rng.randint(0,5)}-{rng.randint(0,5)}\t{rng.randint(5000,81000):,}" for _ in range(3)]
    return "csv", "\n".join(rows)


def g_json(rng):
    y, m, d = rdate(rng)
    t = rng.choice([
        json.dumps({"id": rng.randint(10**8, 10**10), "status": "shipped", "amount": round(rng.uniform(1, 9999), 2),
                    "currency": rng.choice(["EUR", "USD", "INR", "BRL"]), "created": f"{y}-{m:02d}-{d:02d}T{rng.randint(0,23):02d}:{rng.randint(0,59):02d}:00Z"}),
        json.dumps({"build": rng.randint(1000, 99999), "version": f"{rng.randint(1,9)}.{rng.randint(0,30)}.{rng.randint(0,99)}",
                    "checksum": hexs(rng, 32), "size_bytes": rng.randint(10**5, 10**9)}),
        json.dumps({"lat": round(rng.uniform(-60, 70), 6), "lon": round(rng.uniform(-170, 170), 6), "alt_m": round(rng.uniform(0, 3000), 1),
                    "accuracy_m": rng.randint(3, 50), "station_id": digits(rng, 5)}),
        json.dumps({"error": {"code": rng.randint(1000, 9999), "message": f"Rate limit exceeded: {rng.randint(100,5000)} requests per {rng.choice([60,3600])}s",
                    "retry_after": rng.randint(1, 120), "trace": hexs(rng, 16)}}),
        json.dumps({"items": [{"sku": f"{digits(rng,3)}-{digits(rng,4)}", "qty": rng.randint(1, 9), "price_cents": rng.randint(99, 99999)} for _ in range(2)],
                    "cart_id": hexs(rng, 24)}),
    ], )
    return "json", t


def g_markdown(rng):
    hdr = rng.choice([("Region", "Units", "Revenue"), ("Version", "Downloads", "Size"), ("Monat", "Umsatz (€)", "Δ %"), ("Team", "Pts", "GD")])
    rows = []
    for _ in range(3):
        if hdr[0] == "Region":
            rows.append((["EMEA", "APAC", "NA", "LATAM"][len(rows)], f"{rng.randint(1000,999999):,}", f"${rng.uniform(1e4,9e6):,.0f}"))
        elif hdr[0] == "Version":
            rows.append((f"{rng.randint(1,5)}.{rng.randint(0,20)}.{rng.randint(0,9)}", f"{rng.randint(1000,9999999):,}", f"{rng.uniform(1,500):.1f} MB"))
        elif hdr[0] == "Monat":
            rows.append((MONTHS["de"][len(rows) + (rng.randint(0, 9) // 3) * 3], de_num(rng.uniform(1e3, 9e6)), de_num(rng.uniform(-20, 40), 1)))
        else:
            rows.append((["Arsenal", "Inter", "Sevilla", "Lyon", "Porto", "Ajax"][len(rows) * 2 + rng.randint(0, 1)], str(rng.randint(10, 90)), f"{rng.choice(['+','-'])}{rng.randint(0,40)}"))
    lines = ["| " + " | ".join(hdr) + " |", "|---|---:|---:|"] + ["| " + " | ".join(r) + " |" for r in rows]
    return "markdown_table", "\n".join(lines)


def g_sql(rng):
    t = rng.choice([
        f"UPDATE orders SET status = 'refunded', refunded_at = NOW() WHERE id = {rng.randint(10**6, 10**9)} AND amount_cents = {rng.randint(100, 999999)};",
        f"SELECT * FROM events WHERE ts >= {rng.randint(1600000000, 1740000000)} AND device_id IN ({digits(rng,6)}, {digits(rng,6)}, {digits(rng,6)}) LIMIT {rng.choice([50,100,1000])};",
        f"ALTER SEQUENCE invoices_id_seq RESTART WITH {rng.randint(10**5, 10**8)};",
        f"DELETE FROM sessions WHERE last_seen < '2024-0{rng.randint(1,9)}-{rng.randint(10,28)} 00:00:00' -- {rng.randint(1000,99999)} rows expected",
        f"CREATE INDEX CONCURRENTLY idx_{hexs(rng,6)} ON shipments (awb_no) WHERE created_at > '2023-01-01'; -- took {rng.randint(1,900)} s",
    ])
    return "sql", t


def g_stacktrace(rng):
    t = rng.choice([
        f"  File \"/usr/lib/python3.{rng.randint(8,12)}/site-packages/urllib3/connectionpool.py\", line {rng.randint(100,2000)}, in urlopen\nurllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool(host='api.internal', port={rng.choice([443,8443])}): Read timed out. (read timeout={rng.randint(5,60)})",
        f"panic: runtime error: index out of range [{rng.randint(5,99)}] with length {rng.randint(1,5)}\n\ngoroutine {rng.randint(1,9999)} [running]:\nmain.handle(0xc000{hexs(rng,6)}, 0x{hexs(rng,2)})\n\t/app/main.go:{rng.randint(10,900)} +0x{hexs(rng,3)}",
        f"Exception in thread \"pool-{rng.randint(1,9)}-thread-{rng.randint(1,64)}\" java.util.concurrent.TimeoutException\n\tat com.acme.Worker.run(Worker.java:{rng.randint(10,999)})",
        f"Segmentation fault (core dumped) at 0x{hexs(rng,12)}; pid {rng.randint(1000,99999)}, tid {rng.randint(1000,99999)}, signal 11",
        f"thread 'main' panicked at src/parser.rs:{rng.randint(10,999)}:{rng.randint(1,80)}:\ncalled `Result::unwrap()` on an `Err` value: ParseIntError {{ kind: InvalidDigit }}",
        f"ORA-{rng.randint(1000,29999):05d}: unique constraint (APP.PK_ORDERS) violated at line {rng.randint(1,500)}",
    ])
    return "stack_trace", t


def g_isbn(rng):
    def isbn13():
        grp = rng.choice(["9780", "9781", "9782", "9783", "97884", "97888", "97885", "97881", "97912"])
        body = grp + digits(rng, 12 - len(grp))
        full = body + ean.calc_check_digit(body)
        return isbn.format(full) if rng.random() < 0.7 else full
    def issn_():
        body = digits(rng, 7)
        return f"{body[:4]}-{body[4:]}{issn.calc_check_digit(body)}"
    doi = f"10.{rng.randint(1000,9999)}/{rng.choice(['j.','s','abc.','jama.'])}{rng.randint(2000,2024)}.{digits(rng,2)}.{digits(rng,3)}"
    t = rng.choice([
        f"Bibliography: ISBN {isbn13()}; ISSN {issn_()}; doi:{doi}",
        f"Livre : ISBN {isbn13()}, {rng.randint(120,900)} pages, {de_num(rng.uniform(9,60))} €.",
        f"Cita: Revista X, vol. {rng.randint(1,90)}, n.º {rng.randint(1,12)}, pp. {rng.randint(1,300)}–{rng.randint(301,600)}, ISSN {issn_()}.",
        f"https://doi.org/{doi} (accessed {rng.randint(1,28)}.{rng.randint(1,12)}.{rng.randint(2020,2024)})",
        f"Can you find the edition with ISBN {isbn13()}? The one I have is {isbn13()}.",
    ])
    return "isbn_issn_doi", t


def g_cas_icd(rng):
    def cas():
        body = digits(rng, rng.randint(2, 6), "123456789") + digits(rng, 2)
        return f"{body[:-2]}-{body[-2:]}-{casrn.calc_check_digit(body)}"
    icd = rng.sample(["E11.9", "I10", "J45.909", "M54.5", "K21.9", "F32.1", "Z00.00", "R51", "N39.0", "S93.401A", "H52.13"], 3)
    t = rng.choice([
        f"SDS section 3: CAS {cas()} ({rng.randint(10,90)} %), CAS {cas()} (< {rng.randint(1,9)} %).",
        f"Code list for the billing demo: {', '.join(icd)}; CPT {rng.randint(99201,99215)}.",
        f"Lagerliste Chemikalien: {cas()}, {cas()}, {cas()} – Lagerklasse {rng.choice(['3','6.1','8A','10'])}.",
        f"The ICD-10-GM catalogue maps {icd[0]} and {icd[1]}; version {rng.randint(2020,2025)}, {rng.randint(10000,16000)} codes.",
    ])
    return "cas_icd", t


def g_geo(rng):
    lat, lon = rng.uniform(-55, 70), rng.uniform(-160, 170)
    t = rng.choice([
        f"GPS fix: {lat:.6f}, {lon:.6f} (HDOP {rng.uniform(0.5,3):.1f}, {rng.randint(4,14)} sats)",
        f"Treffpunkt {abs(lat):.5f}° {'N' if lat>0 else 'S'}, {abs(lon):.5f}° {'E' if lon>0 else 'W'}, Höhe {rng.randint(0,3500)} m ü. NN",
        f"{int(abs(lat))}°{rng.randint(0,59)}′{rng.randint(0,59)}″{'N' if lat>0 else 'S'} {int(abs(lon))}°{rng.randint(0,59)}′{rng.randint(0,59)}″{'E' if lon>0 else 'W'}",
        f"Delivery zones: {', '.join(digits(rng,5) for _ in range(4))} and {digits(rng,3)}-{digits(rng,4)}",
        f"Codes postaux desservis : {', '.join(str(rng.randint(1000,95999)).zfill(5) for _ in range(5))}.",
        f"PIN codes covered: {', '.join(str(rng.randint(110001, 855117)) for _ in range(4))}",
        f"CEP {digits(rng,5)}-{digits(rng,3)} até {digits(rng,5)}-{digits(rng,3)} — frete grátis",
    ])
    return "geo_zip", t


def g_sports_math(rng):
    a, b = rng.randint(100000, 9999999), rng.randint(1000, 999999)
    t = rng.choice([
        f"Halbzeit {rng.randint(0,3)}:{rng.randint(0,3)}, Endstand {rng.randint(0,5)}:{rng.randint(0,5)}, Zuschauer: {de_num(rng.randint(5000,81000),0)}",
        f"Set scores {' '.join(rng.choice(['6-4','4-6','7-5','5-7','6-3','3-6','7-6(4)','6-7(5)','6-2','6-1','6-0']) for _ in range(rng.choice([2,3])))}, match time {rng.randint(1,4)}h{rng.randint(0,59):02d}",
        f"India {rng.randint(150,450)}/{rng.randint(1,10)} ({rng.randint(20,50)}.{rng.randint(0,5)} ov), need {rng.randint(1,200)} off {rng.randint(1,120)} balls",
        f"What is {a} * {b}? I get {a*b} but want to double-check.",
        f"Compute {a} mod {b} and gcd({a}, {b}); then show {a} in base 16 (0x{a:x}).",
        f"{a} / {b} ≈ {a/b:.6f}, rounded to {rng.randint(2,4)} sig figs",
        f"Sequence: {', '.join(str(rng.randint(100,999)) for _ in range(6))} — what comes next?",
    ])
    return "sports_math", t


def g_serial_impossible(rng):
    t = rng.choice([
        f"S/N {rng.choice(['SN','SER','S'])}{digits(rng,10)} — HW rev {rng.choice('ABCDE')}{rng.randint(1,9)}, mfg date {rng.randint(1,52):02d}/{rng.randint(18,24)}",
        f"Serial: {''.join(rng.choice(string.ascii_uppercase+string.digits) for _ in range(12))}; IMEI slot left blank in test fixture",
        f"assert validate_phone(\"{rng.choice(['000','111','999'])}-{rng.choice(['000','555','123'])}-{rng.choice(['0000','1234','9999'])}\") is False",
        f"mock_data = {{\"phone\": \"(000) 000-{digits(rng,4)}\", \"zip\": \"00000\", \"id\": {rng.randint(1,999)}}}",
        f"// TODO: reject dummy numbers like 123-456-7890 and +00 0000 000000 in the signup form (ticket {rng.randint(1000,9999)})",
        f"Lizenzschlüssel {'-'.join(''.join(rng.choice(string.ascii_uppercase+string.digits) for _ in range(5)) for _ in range(5))}",
        f"Model {rng.choice(['XPS','T14','MBP'])}-{rng.randint(10,99)}{rng.choice(['00','10','20'])}, part no. {digits(rng,2)}-{digits(rng,5)}-{digits(rng,3)}",
    ])
    return "serials_fake_phones", t


def g_scientific(rng):
    t = rng.choice([
        f"Measured k = {rng.uniform(1,9):.4f}e-{rng.randint(3,30)} ± {rng.uniform(0.1,9):.2f}e-{rng.randint(3,30)} (n = {rng.randint(3,5000)})",
        f"Konzentration {de_num(rng.uniform(0.001,999),4)} mg/l, Nachweisgrenze {de_num(rng.uniform(0.0001,0.1),5)} mg/l",
        f"OD600 = {rng.uniform(0.05,2):.3f} after {rng.randint(1,48)} h at {rng.randint(25,42)} °C, {rng.randint(100,250)} rpm",
        f"Spectrum peaks at {rng.randint(200,900)}.{rng.randint(0,9)} nm, {rng.randint(200,900)}.{rng.randint(0,9)} nm; ε = {rng.randint(1000,99999):,} M⁻¹cm⁻¹",
        f"Resistance {rng.randint(1,999)} kΩ ±{rng.choice([1,5,10])} %, capacitance {rng.randint(1,999)} nF, f₀ = {rng.uniform(1,999):.3f} kHz",
        f"p = {rng.uniform(0.0001,0.05):.4f}, r = {rng.uniform(-1,1):.3f}, 95 % CI [{rng.uniform(0,1):.2f}; {rng.uniform(1,2):.2f}], N = {rng.randint(1000,99999):,}",
    ])
    return "scientific", t


def g_sortcode_bank(rng):
    sc = f"{digits(rng,2)}-{digits(rng,2)}-{digits(rng,2)}"
    t = rng.choice([
        f"Sort code {sc} belongs to the {rng.choice(['Leeds','Cardiff','Glasgow','Norwich'])} branch; the lookup table has {rng.randint(5000,20000):,} rows.",
        f"Bankleitzahl {digits(rng,3,'1234567')} {digits(rng,3)} {digits(rng,2)} gehört zur Filiale {rng.choice(['Mitte','Nord','Süd'])}; BIC-Verzeichnis Stand {rng.randint(1,28):02d}.{rng.randint(1,12):02d}.2024.",
        f"Routing check: ABA {digits(rng,9,'0123')} failed checksum, please re-enter (error {rng.randint(100,999)}).",
        f"Code banque {digits(rng,5)}, code guichet {digits(rng,5)} — annuaire des agences mis à jour le {rng.randint(1,28)}/{rng.randint(1,12)}/2024.",
        f"IFSC lookup: branch code {digits(rng,6)}, MICR {digits(rng,9)}, city code {digits(rng,3)}.",
    ])
    return "bank_codes_only", t


def g_slack(rng):
    t = rng.choice([
        f"@here p1 incident INC{digits(rng,7)}: error budget down to {rng.uniform(0,50):.1f}% — {rng.randint(100,9999)} 5xx in last {rng.randint(5,60)} min",
        f"merged PR #{rng.randint(1000,30000)}, deploying {rng.randint(1,9)}.{rng.randint(0,40)}.{rng.randint(0,9)} to prod at {rng.randint(9,18)}:{rng.choice(['00','15','30','45'])} :rocket:",
        f"standup moved to {rng.randint(9,11)}:{rng.choice(['00','30'])}, zoom id {digits(rng,3,'89')} {digits(rng,4)} {digits(rng,4)}",
        f"quick q: is ticket JIRA-{rng.randint(100,9999)} blocked by {rng.choice(['OPS','SEC','DATA'])}-{rng.randint(100,9999)}? sprint {rng.randint(10,99)} ends {rng.randint(1,28)}/{rng.randint(1,12)}",
        f"cost alert :money_with_wings: ${rng.randint(1000,99999):,}.{rng.randint(0,99):02d} MTD vs ${rng.randint(1000,99999):,} budget ({rng.randint(-30,60)}%)",
        f"lol the test user count just hit {rng.randint(10**6,10**8):,}, db size {rng.uniform(1,900):.1f} GB",
    ])
    return "slack", t


def g_llm(rng):
    a = rng.randint(10**5, 10**9)
    t = rng.choice([
        f"Can you format {a} with thousands separators for en-US, de-DE, fr-FR and hi-IN locales?",
        f"Write a SQL query that returns the top {rng.randint(3,20)} orders by amount between '2024-0{rng.randint(1,6)}-01' and '2024-0{rng.randint(7,9)}-30'.",
        f"My Excel shows {a} as {a:.3e}. How do I keep all {len(str(a))} digits?",
        f"Convert the timestamp {rng.randint(1500000000,1750000000)} to UTC and to Asia/Kolkata time please.",
        f"Is {rng.randint(10**6,10**9)} a prime number? If not, factor it.",
        f"Explain the difference between version {rng.randint(1,4)}.{rng.randint(0,9)}.{rng.randint(0,9)} and {rng.randint(1,4)}.{rng.randint(0,9)}.{rng.randint(0,9)}-rc{rng.randint(1,3)} in semver.",
        f"Summarise: revenue {de_num(rng.uniform(1e5,1e8))} € (+{rng.randint(1,30)} %), costs {de_num(rng.uniform(1e5,1e8))} €, headcount {rng.randint(10,5000)}.",
    ])
    return "llm_chat", t


GENERATORS = [g_order_en, g_order_de, g_order_fr, g_order_es, g_order_it, g_order_pt, g_hinglish, g_tracking, g_prices,
              g_quantities, g_dates, g_durations, g_versions, g_build, g_hashes, g_ip, g_mac, g_csv, g_json, g_markdown,
              g_sql, g_stacktrace, g_isbn, g_cas_icd, g_geo, g_sports_math, g_serial_impossible, g_scientific,
              g_sortcode_bank, g_slack, g_llm]
PER_GENERATOR = 9


def build_lookalikes():
    rng = random.Random(20240315)
    rows, report = [], []
    for style, text in HAND:
        rows.append({"text": text, "spans": [], "set": "heldout-lookalike", "style": style, "_src": "hand"})
    for gen in GENERATORS:
        made, seen, skeletons = 0, set(), Counter()
        tries = 0
        while made < PER_GENERATOR:
            tries += 1
            assert tries < 2000, gen.__name__
            style, text = gen(rng)
            if text in seen:
                continue
            skel = re.sub(r"[0-9a-fA-F]+", "#", text)[:18]
            if skeletons[skel] >= 2 and tries < 1500:
                continue  # keep templates varied within a generator
            hits = scan(text)
            if any(h[0] in STRONG for h in hits):
                continue  # regenerate: avoid accidental checksum-valid IDs in generated look-alikes
            seen.add(text)
            skeletons[skel] += 1
            rows.append({"text": text, "spans": [], "set": "heldout-lookalike", "style": style, "_src": "gen"})
            made += 1
    for i, r in enumerate(rows):
        hits = scan(r["text"])
        assert not any(h[0] == "email" for h in hits), r["text"]
        if hits:
            report.append({"line": i + 1, "style": r["style"], "src": r["_src"],
                           "hits": [{"kind": k, "text": raw} for k, s, e, raw in hits]})
    return rows, report


# ================================================================ POSITIVE VALUE GENERATORS
def gen_phone(rng, region):
    def d(n, first="0123456789"):
        return digits(rng, n, first)
    for _ in range(10000):
        if region in ("US", "CA"):
            area = rng.choice(["212", "312", "415", "617", "713", "206", "305", "404", "503", "702", "818", "972", "646", "917", "480"]
                              if region == "US" else ["416", "647", "604", "778", "514", "438", "403", "587", "613", "902", "306", "204", "905"])
            ex = d(3, "23456789")
            if ex == "555" or ex[1:] == "11":
                continue
            ln = d(4)
            v = rng.choice([f"({area}) {ex}-{ln}", f"{area}-{ex}-{ln}", f"{area}.{ex}.{ln}", f"+1 {area} {ex} {ln}",
                            f"+1-{area}-{ex}-{ln}", f"1 ({area}) {ex}-{ln}", f"{area}{ex}{ln}", f"+1 ({area}) {ex}-{ln}"])
        elif region == "GB":
            k = rng.randint(0, 2)
            if k == 0:
                p = "07" + rng.choice("1234579") + d(2)
                r = d(6)
                if p == "07700" and r.startswith("900"):
                    continue
                v = rng.choice([f"{p} {r}", f"{p} {r[:3]} {r[3:]}", f"+44 {p[1:]} {r}", f"+44 (0){p[1:]} {r}", f"{p}{r}", f"+44{p[1:]}{r}"])
            elif k == 1:
                r = rng.choice("378") + d(7)
                if r.startswith("79460"):
                    continue
                v = rng.choice([f"020 {r[:4]} {r[4:]}", f"(020) {r[:4]} {r[4:]}", f"+44 20 {r[:4]} {r[4:]}", f"+44 (0)20 {r[:4]} {r[4:]}"])
            else:
                ac = rng.choice(["161", "121", "131", "141", "113", "117"])
                r = d(7, "2345789")
                if r.startswith("4960"):
                    continue
                v = rng.choice([f"0{ac} {r[:3]} {r[3:]}", f"+44 {ac} {r[:3]} {r[3:]}", f"(0{ac}) {r[:3]} {r[3:]}", f"0{ac}-{r[:3]}-{r[3:]}"])
        elif region == "DE":
            if rng.random() < 0.5:
                pre, n = rng.choice([("151", 8), ("152", 8), ("157", 8), ("160", 7), ("170", 7), ("171", 7), ("172", 7), ("175", 7), ("176", 8), ("177", 7), ("179", 7)])
                r = d(n, "123456789")
                v = rng.choice([f"0{pre} {r}", f"0{pre}/{r}", f"0{pre}-{r}", f"+49 {pre} {r}", f"+49 (0){pre} {r[:4]} {r[4:]}",
                                f"0{pre} {r[:3]} {r[3:]}", f"0049 {pre} {r}", f"+49{pre}{r}"])
            else:
                ac, n = rng.choice([("30", 8), ("30", 7), ("89", 8), ("89", 7), ("40", 8), ("69", 8), ("221", 7), ("211", 7), ("711", 7), ("351", 7)])
                r = d(n, "23456789")
                v = rng.choice([f"0{ac} {r}", f"0{ac}/{r}", f"(0{ac}) {r[:4]} {r[4:]}", f"+49 {ac} {r}", f"+49 (0){ac} {r}",
                                f"0{ac}-{r}", f"0{ac} / {r[:3]} {r[3:]}", f"0049 {ac} {r}"])
        elif region == "FR":
            p = rng.choice(["1", "2", "3", "4", "5", "6", "7"])
            r = d(8, "123456789" if p in "67" else "0123456789")
            g = [r[i:i + 2] for i in range(0, 8, 2)]
            v = rng.choice([f"0{p} {' '.join(g)}", f"0{p}.{'.'.join(g)}", f"0{p}{r}", f"+33 {p} {' '.join(g)}",
                            f"+33 (0){p} {' '.join(g)}", f"+33{p}{r}", f"0{p}-{'-'.join(g)}", f"0{p} {r[:2]} {r[2:4]} {r[4:6]} {r[6:]}"])
        elif region == "ES":
            if rng.random() < 0.6:
                r = rng.choice("67") + d(8)
                v = rng.choice([f"{r[:3]} {r[3:6]} {r[6:]}", f"{r[:3]} {r[3:5]} {r[5:7]} {r[7:]}", f"+34 {r[:3]} {r[3:6]} {r[6:]}",
                                f"+34 {r}", f"0034 {r[:3]} {r[3:6]} {r[6:]}", f"(+34) {r[:3]} {r[3:5]} {r[5:7]} {r[7:]}", r])
            else:
                r = rng.choice(["91", "93", "96", "95", "94", "98"]) + d(7, "2345678")
                v = rng.choice([f"{r[:2]} {r[2:5]} {r[5:7]} {r[7:]}", f"{r[:3]} {r[3:6]} {r[6:]}", f"+34 {r[:2]} {r[2:5]} {r[5:7]} {r[7:]}",
                                f"(+34) {r[:3]} {r[3:6]} {r[6:]}", f"+34 {r}"])
        elif region == "IT":
            if rng.random() < 0.55:
                r = rng.choice(["320", "328", "329", "333", "334", "335", "338", "339", "340", "345", "347", "348", "349", "366", "380", "392"]) + d(7)
                v = rng.choice([f"{r[:3]} {r[3:6]} {r[6:]}", f"{r[:3]} {r[3:]}", f"+39 {r[:3]} {r[3:6]} {r[6:]}", f"+39 {r[:3]} {r[3:]}",
                                f"{r[:3]}-{r[3:]}", f"+39{r}", f"0039 {r[:3]} {r[3:]}", f"{r[:3]}/{r[3:]}"])
            else:
                ac, n = rng.choice([("06", 8), ("02", 8), ("011", 7), ("055", 7), ("081", 7), ("051", 7), ("010", 7)])
                r = d(n, "2345678")
                v = rng.choice([f"{ac} {r[:4]} {r[4:]}", f"{ac} {r}", f"{ac}-{r}", f"+39 {ac} {r}", f"+39 {ac} {r[:4]} {r[4:]}",
                                f"0039 {ac} {r}", f"{ac}/{r}"])
        elif region == "IN":
            if rng.random() < 0.65:
                r = d(10, "6789")
                v = rng.choice([f"{r[:5]} {r[5:]}", f"+91 {r[:5]} {r[5:]}", f"+91-{r}", f"0{r}", f"+91{r}", f"{r[:5]}-{r[5:]}",
                                f"+91 {r}", r, f"0{r[:5]} {r[5:]}"])
            else:
                ac = rng.choice(["11", "22", "80", "33", "44", "40"])
                r = d(8, "2345678")
                v = rng.choice([f"0{ac}-{r[:4]} {r[4:]}", f"0{ac} {r[:4]} {r[4:]}", f"+91 {ac} {r[:4]} {r[4:]}",
                                f"0{ac}-{r}", f"(0{ac}) {r}", f"+91-{ac}-{r}"])
        elif region == "BR":
            ddd = rng.choice(["11", "21", "31", "41", "51", "61", "71", "81", "85", "19", "48", "62"])
            if rng.random() < 0.6:
                r = "9" + d(8, "6789")
                v = rng.choice([f"({ddd}) {r[:5]}-{r[5:]}", f"({ddd}) {r[0]} {r[1:5]}-{r[5:]}", f"+55 {ddd} {r[:5]}-{r[5:]}",
                                f"+55 ({ddd}) {r[:5]}-{r[5:]}", f"{ddd} {r[:5]}-{r[5:]}", f"{ddd}{r}", f"+55{ddd}{r}", f"({ddd}){r[:5]}-{r[5:]}"])
            else:
                r = d(8, "2345")
                v = rng.choice([f"({ddd}) {r[:4]}-{r[4:]}", f"+55 {ddd} {r[:4]}-{r[4:]}", f"+55 ({ddd}) {r[:4]}-{r[4:]}",
                                f"{ddd} {r[:4]}-{r[4:]}", f"({ddd}) {r[:4]} {r[4:]}"])
        elif region == "AU":
            if rng.random() < 0.55:
                r = "4" + rng.choice("0123456789") + d(7)
                if r.startswith("491570"):
                    continue
                v = rng.choice([f"0{r[:3]} {r[3:6]} {r[6:]}", f"+61 {r[:3]} {r[3:6]} {r[6:]}", f"0{r}", f"+61 {r[0]} {r[1:5]} {r[5:]}",
                                f"04{r[1:3]}-{r[3:6]}-{r[6:]}", f"+61{r}"])
            else:
                ac = rng.choice(["2", "3", "7", "8"])
                r = d(8, "3456789" if ac != "2" else "89")
                v = rng.choice([f"(0{ac}) {r[:4]} {r[4:]}", f"0{ac} {r[:4]} {r[4:]}", f"+61 {ac} {r[:4]} {r[4:]}",
                                f"+61 (0){ac} {r[:4]} {r[4:]}", f"0{ac}{r}"])
        if phone_valid(v, region):
            return v
    raise RuntimeError(region)


FIRST = ["anna", "lukas", "marie", "jonas", "sophie", "pierre", "lucia", "marco", "giulia", "priya", "rahul", "joao", "ana",
         "emily", "james", "olivia", "noah", "chloe", "mateo", "sara", "arjun", "leonie", "hugo", "carla", "tom"]
LAST = ["schmidt", "mueller", "dupont", "moreau", "garcia", "lopez", "rossi", "bianchi", "sharma", "patel", "silva", "santos",
        "smith", "brown", "tremblay", "wilson", "nguyen", "weber", "martin", "ferreira", "kumar", "jones", "fischer", "russo"]
DOMAINS = ["gmail.com", "outlook.com", "web.de", "gmx.de", "t-online.de", "orange.fr", "free.fr", "yahoo.es", "hotmail.es",
           "libero.it", "virgilio.it", "yahoo.co.in", "rediffmail.com", "uol.com.br", "bol.com.br", "icloud.com",
           "protonmail.com", "btinternet.com", "bigpond.com", "shaw.ca", "posteo.de", "mail.ru"]


def gen_email(rng):
    f, l = rng.choice(FIRST), rng.choice(LAST)
    dom = rng.choice(DOMAINS) if rng.random() < 0.75 else rng.choice(
        ["kanzlei-weber.de", "studio-moreau.fr", "acme-logistics.co.uk", "ferreira-advogados.com.br", "ristorante-bianchi.it", "patel-associates.in"])
    local = rng.choice([f"{f}.{l}", f"{f[0]}.{l}{rng.randint(70,99)}", f"{f}_{l}{rng.randint(1,99)}", f"{l}.{f}", f"{f}{l}",
                        f"{f}.{l}+{rng.choice(['shop','news','rechnung'])}", f"{f[0]}{l}", f"{f}-{l[:3]}{rng.randint(1980,2005)}"])
    if rng.random() < 0.1:
        local = local.capitalize()
    return f"{local}@{dom}"


def gen_ssn(rng):
    while True:
        area = rng.randint(1, 899)
        if area == 666:
            continue
        s = f"{area:03d}{rng.randint(1,99):02d}{rng.randint(1,9999):04d}"
        if not ssn.is_valid(s):
            continue
        return rng.choice([f"{s[:3]}-{s[3:5]}-{s[5:]}"] * 4 + [f"{s[:3]} {s[3:5]} {s[5:]}", s])


_CARD_CYCLE = ["visa", "mc", "amex", "visa", "mc2", "disc", "visa", "jcb", "mc", "diners"]
_card_i = [0]


def gen_card(rng):
    brand = _CARD_CYCLE[_card_i[0] % len(_CARD_CYCLE)]
    _card_i[0] += 1
    pre, n = {"visa": ("4" + digits(rng, 5), 16), "mc": (str(rng.randint(51, 55)) + digits(rng, 4), 16),
              "mc2": (str(rng.randint(2221, 2720)) + digits(rng, 2), 16), "amex": (rng.choice(["34", "37"]) + digits(rng, 4), 15),
              "disc": ("6011" + digits(rng, 2), 16), "jcb": (str(rng.randint(3528, 3589)) + digits(rng, 2), 16),
              "diners": ("36" + digits(rng, 4), 14)}[brand]
    body = pre + digits(rng, n - 1 - len(pre))
    num = body + luhn.calc_check_digit(body)
    sep = rng.choice([" ", " ", "-", ""])
    if n == 16:
        return sep.join(num[i:i + 4] for i in range(0, 16, 4))
    if n == 15:
        return sep.join([num[:4], num[4:10], num[10:]])
    return sep.join([num[:4], num[4:10], num[10:]])


CF_ODD = {**{str(i): v for i, v in enumerate([1, 0, 5, 7, 9, 13, 15, 17, 19, 21])},
          **dict(zip(string.ascii_uppercase, [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]))}


def it_cin(s):  # CIN of an Italian BBAN (same algorithm as codice fiscale check char)
    tot = 0
    for i, ch in enumerate(s):
        if i % 2 == 0:
            tot += CF_ODD[ch]
        else:
            tot += int(ch) if ch.isdigit() else ord(ch) - 65
    return chr(65 + tot % 26)


def gen_iban(rng):
    while True:
        cc = rng.choice(["DE", "DE", "FR", "ES", "IT", "GB", "NL", "AT", "BE", "CH", "IE", "PT"])
        if cc == "DE":
            bban = digits(rng, 8, "1234567") + digits(rng, 10)
        elif cc == "AT":
            bban = digits(rng, 5, "123456") + digits(rng, 11)
        elif cc == "NL":
            while True:
                acct = digits(rng, 10, "0123456789")
                if sum(int(c) * (10 - i) for i, c in enumerate(acct)) % 11 == 0:
                    break
            bban = rng.choice(["ABNA", "RABO", "SNSB", "TRIO", "KNAB", "ASNB"]) + acct
        elif cc == "GB":
            bban = rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]) + digits(rng, 6) + digits(rng, 8)
        elif cc == "IE":
            bban = rng.choice(["AIBK", "BOFI"]) + digits(rng, 6, "9") + digits(rng, 8)
        elif cc == "CH":
            bban = digits(rng, 5) + digits(rng, 12)
        elif cc == "FR":
            bank, guichet, compte = digits(rng, 5, "123"), digits(rng, 5), digits(rng, 11)
            key = 97 - ((89 * int(bank) + 15 * int(guichet) + 3 * int(compte)) % 97)
            bban = f"{bank}{guichet}{compte}{key:02d}"
        elif cc == "ES":
            b = digits(rng, 4, "0123") + digits(rng, 4) + "00" + digits(rng, 10)
            chk = ccc.calc_check_digits(b)
            bban = b[:8] + chk + b[10:]
        elif cc == "IT":
            rest = digits(rng, 5, "0") + digits(rng, 5, "0123") + digits(rng, 12)
            bban = it_cin(rest) + rest
        elif cc == "BE":
            b = digits(rng, 10)
            chk = int(b) % 97 or 97
            bban = f"{b}{chk:02d}"
        elif cc == "PT":
            b = "00" + digits(rng, 2, "123") + digits(rng, 4) + digits(rng, 11)
            chk = 98 - (int(b + "00") % 97)
            bban = f"{b}{chk:02d}"
        num = cc + std_iban.calc_check_digits(cc + "00" + bban) + bban
        if not std_iban.is_valid(num):
            continue
        return std_iban.format(num) if rng.random() < 0.7 else num


def gen_nino(rng):
    while True:
        p = rng.choice(string.ascii_uppercase) + rng.choice(string.ascii_uppercase)
        if p[0] in NINO_BAD1 or p[1] in NINO_BAD2 or p in NINO_BAD_PAIRS or p in NINO_ADMIN or p[0] in "O":
            continue
        n = digits(rng, 6)
        s = rng.choice("ABCD")
        return rng.choice([f"{p}{n}{s}", f"{p} {n[:2]} {n[2:4]} {n[4:]} {s}", f"{p} {n} {s}", f"{p}{n}{s}".lower() if rng.random() < 0.2 else f"{p}{n}{s}"])


def gen_idnr(rng):
    while True:
        ds = rng.sample(string.digits, 9)
        dup = rng.choice(ds)
        ten = ds + [dup]
        if rng.random() < 0.3:
            pass
        rng.shuffle(ten)
        if ten[0] == "0":
            continue
        body = "".join(ten)
        for c in string.digits:
            if idnr.is_valid(body + c):
                v = body + c
                return rng.choice([f"{v[:2]} {v[2:5]} {v[5:8]} {v[8:]}", v, f"{v[:2]} {v[2:5]} {v[5:8]} {v[8:]}"])


def gen_nir(rng):
    while True:
        sex = rng.choice("12")
        yy = f"{rng.randint(40,99) if rng.random()<0.7 else rng.randint(0,5):02d}"
        mm = f"{rng.randint(1,12):02d}"
        dep = rng.choice([f"{rng.randint(1,95):02d}", "2A", "2B", "75", "69", "13", "33"])
        if dep == "20":
            continue
        com = f"{rng.randint(1,990):03d}"
        order = f"{rng.randint(1,999):03d}"
        body = sex + yy + mm + dep + com + order
        key = nir.calc_check_digits(body)
        full = body + key
        if not nir.is_valid(full):
            continue
        return rng.choice([f"{sex} {yy} {mm} {dep} {com} {order} {key}", full, f"{sex}{yy}{mm}{dep}{com}{order} {key}",
                           f"{sex} {yy} {mm} {dep} {com} {order} {key}"])


def gen_dni(rng):
    n = digits(rng, 8, "0123456789"[rng.choice([0, 1])] if False else "0123456789")
    l = dni.calc_check_digit(n)
    return rng.choice([f"{n}{l}", f"{n}-{l}", f"{n}{l}", f"{n} {l}", f"{n[:2]}.{n[2:5]}.{n[5:]}-{l}"])


def gen_nie(rng):
    p = rng.choice("XYZ")
    n = digits(rng, 7)
    l = nie.calc_check_digit(p + n)
    return rng.choice([f"{p}{n}{l}", f"{p}-{n}-{l}", f"{p}{n}-{l}", f"{p}{n}{l}"])


BELFIORE = ["H501", "F205", "L219", "F839", "A944", "D612", "G273", "L736", "C351", "A662", "E506", "B157", "Z404", "Z133"]
CONS = "BCDFGHJKLMNPQRSTVWXZ"
VOW = "AEIOU"


def gen_cf(rng):
    def part():
        return rng.choice([lambda: "".join(rng.choice(CONS) for _ in range(3)),
                           lambda: rng.choice(CONS) + rng.choice(CONS) + rng.choice(VOW),
                           lambda: rng.choice(CONS) + rng.choice(VOW) + rng.choice(VOW)])()
    while True:
        body = part() + part() + f"{rng.randint(40,99):02d}" + rng.choice("ABCDEHLMPRST") + \
            f"{rng.randint(1,28) + (40 if rng.random()<0.5 else 0):02d}" + rng.choice(BELFIORE)
        v = body + codicefiscale.calc_check_digit(body)
        if codicefiscale.is_valid(v):
            return v if rng.random() < 0.9 else v.lower()


def gen_aadhaar(rng):
    while True:
        b = digits(rng, 11, "23456789")
        v = b + verhoeff.calc_check_digit(b)
        if aadhaar.is_valid(v):
            return rng.choice([f"{v[:4]} {v[4:8]} {v[8:]}"] * 3 + [v, f"{v[:4]}-{v[4:8]}-{v[8:]}"])


def gen_pan(rng):
    while True:
        v = "".join(rng.choice(string.ascii_uppercase) for _ in range(3)) + rng.choice("PPPPCHF") + \
            rng.choice(string.ascii_uppercase) + digits(rng, 4) + rng.choice(string.ascii_uppercase)
        if pan.is_valid(v):
            return v


def gen_sin(rng):
    while True:
        b = digits(rng, 8, "1234567" * 3 + "9")
        v = b + luhn.calc_check_digit(b)
        if sin.is_valid(v):
            return rng.choice([f"{v[:3]} {v[3:6]} {v[6:]}", f"{v[:3]}-{v[3:6]}-{v[6:]}", v])


def gen_cpf(rng):
    while True:
        b = [int(c) for c in digits(rng, 9)]
        d1 = (sum(x * (10 - i) for i, x in enumerate(b)) * 10 % 11) % 10
        d2 = (sum(x * (11 - i) for i, x in enumerate(b + [d1])) * 10 % 11) % 10
        v = "".join(map(str, b)) + f"{d1}{d2}"
        if cpf.is_valid(v):
            return rng.choice([f"{v[:3]}.{v[3:6]}.{v[6:9]}-{v[9:]}"] * 3 + [v])


def gen_vat(rng, want=None):
    while True:
        cc = rng.choice(want or ["DE", "FR", "IT", "ES", "NL", "BE", "AT", "PT", "IE", "PL"])
        if cc == "DE":
            c = "DE" + digits(rng, 9, "123456789")
            fmt = [c, f"DE {c[2:5]} {c[5:8]} {c[8:]}"]
        elif cc == "FR":
            b = digits(rng, 8, "3456789")
            siren = b + luhn.calc_check_digit(b)
            key = (12 + 3 * (int(siren) % 97)) % 97
            c = f"FR{key:02d}{siren}"
            fmt = [c, f"FR {key:02d} {siren[:3]} {siren[3:6]} {siren[6:]}"]
        elif cc == "IT":
            b = digits(rng, 7, "0") + f"{rng.randint(1,100):03d}"
            c = "IT" + b + luhn.calc_check_digit(b)
            fmt = [c, f"IT {c[2:]}"]
        elif cc == "ES":
            c = "ES" + rng.choice("ABB") + digits(rng, 8)
            fmt = [c]
        elif cc == "NL":
            c = "NL" + digits(rng, 9, "123456789") + "B01"
            fmt = [c]
        elif cc == "BE":
            b = "0" + digits(rng, 7, "2345678")
            chk = 97 - int(b) % 97
            c = f"BE{b}{chk:02d}"
            fmt = [c, f"BE {c[2:6]}.{c[6:9]}.{c[9:]}"]
        elif cc == "AT":
            b = digits(rng, 7)
            c = "ATU" + b + at_uid_check(b)
            fmt = [c]
        elif cc == "PT":
            b = rng.choice("5") + digits(rng, 7)
            from stdnum.pt import nif as ptnif
            c = "PT" + b + ptnif.calc_check_digit(b)
            fmt = [c, f"PT {c[2:5]} {c[5:8]} {c[8:]}"]
        elif cc == "IE":
            from stdnum.ie import vat as ievat
            b = digits(rng, 7, "123456789")
            c = "IE" + b + ievat.calc_check_digit(b)
            fmt = [c]
        else:
            c = "PL" + digits(rng, 10, "123456789")
            fmt = [c]
        v = rng.choice(fmt)
        if vat.is_valid(v):
            return v


def at_uid_check(b):
    from stdnum.at import uid
    return uid.calc_check_digit("U" + b + "0")[-1] if False else uid.calc_check_digit("U" + b)


PASS_COUNTRIES = ["US", "GB", "DE", "FR", "IN", "ES", "IT", "CA", "AU", "BR"]


def gen_passport(rng, want=None):
    c = want or rng.choice(PASS_COUNTRIES)
    U = string.ascii_uppercase
    v = {
        "US": lambda: rng.choice([rng.choice(U) + digits(rng, 8), digits(rng, 9, "5")]),
        "GB": lambda: digits(rng, 9, "1235"),
        "DE": lambda: rng.choice("CFGHJK") + "".join(rng.choice("CFGHJKLMNPRTVWXYZ0123456789") for _ in range(8)),
        "FR": lambda: digits(rng, 2, "12") + rng.choice(U) + rng.choice(U) + digits(rng, 5),
        "IN": lambda: rng.choice("JKLMNPRSTUVWZ") + digits(rng, 7, "123456789"),
        "ES": lambda: rng.choice(["PA", "XD", "AA"]) + rng.choice(U) + digits(rng, 6),
        "IT": lambda: rng.choice(["YA", "YB", "AA"]) + digits(rng, 7),
        "CA": lambda: rng.choice(["AB", "GA", "HM", "P"]) + digits(rng, 6) if False else rng.choice(["AB", "GA", "HM", "AK"]) + digits(rng, 6),
        "AU": lambda: rng.choice(["PA", "PB", "N", "E"]) + digits(rng, 7),
        "BR": lambda: rng.choice(["FZ", "GA", "YB"]) + digits(rng, 6),
    }[c]()
    return v, c


# ---------------------------------------------------------------- positive templates
# {v} marks the value. "L" = labelled (entity named nearby), "B" = bare.
T_PHONE = {
    "en": {"L": ["Tel: {v}", "Mobile: {v} (best after 5pm)", "My cell is {v}, text first pls", "Phone number on the account: {v}",
                 "| Phone | {v} |", "{{\"phone\": \"{v}\", \"opt_in\": true}}", "phone,preferred_time,channel\n{v},evening,voice",
                 "--\nSupport Desk | Northwind Logistics\nTel. {v}\nwww.northwind.example", "Ph: {v}", "Mob: {v}",
                 "Please update my phone to {v} — the old one is disconnected."],
           "B": ["ring me on {v} after six", "{v} — that's the new one", "ok try {v}", "Reach me at {v} if the courier can't find the gate.",
                 "{{\"contact\": \"{v}\", \"verified\": false}}", "Text {v} when you're outside.", "yes that's right, {v}",
                 "Call {v} to confirm the delivery slot.", "Hi, can you get back to me on {v} tomorrow morning? thanks!",
                 "2024-03-11,{v},callback requested", "The courier said to try {v} instead."]},
    "de": {"L": ["Tel.: {v}", "Handy: {v}", "Mobil {v} – bitte nur werktags", "Telefonnummer: {v}", "Rückruf erbeten unter Tel. {v}",
                 "Mit freundlichen Grüßen\nIhr Kundenservice\nMusterfirma GmbH · Tel. {v}", "Fon: {v}", "Telefon (privat): {v}",
                 "Meine neue Handynummer ist {v}."],
           "B": ["Erreichbar unter {v} ab 18 Uhr.", "Bitte kurz durchklingeln: {v}", "{v} – das ist die neue, die alte ist abgemeldet",
                 "Rufen Sie mich gerne unter {v} an.", "Meld dich unter {v}!", "Kontakt: {v}", "Rückruf bitte an {v}, danke.",
                 "Anruf am Freitag unter {v} hat geklappt."]},
    "fr": {"L": ["Tél. : {v}", "Portable : {v}", "Mon numéro de téléphone est le {v}", "Téléphone : {v} (après 18 h)",
                 "Cordialement,\nService client — Boulangerie du Port\nTél. {v}", "Mobile : {v}", "N° de portable : {v}",
                 "Téléphone fixe : {v}"],
           "B": ["Vous pouvez me joindre au {v}.", "Appelez-moi au {v} demain matin.", "c'est le {v}, merci !",
                 "Rappel souhaité au {v} entre 9 h et 12 h.", "Joignable au {v}", "Contact : {v}", "Laissez un message au {v} svp.",
                 "Le livreur peut sonner ou appeler le {v}."]},
    "es": {"L": ["Tel.: {v}", "Móvil: {v}", "Mi número de teléfono es {v}", "Teléfono de contacto: {v}",
                 "Atentamente,\nAtención al cliente\nTfno. {v}", "WhatsApp/móvil: {v}", "Teléfono fijo: {v}", "Tlf: {v}"],
           "B": ["Llámame al {v} cuando llegues.", "Puedes localizarme en el {v}.", "es el {v}, gracias", "Contacto: {v}",
                 "Escríbeme al {v} por la tarde.", "Si no contesto, insiste en el {v}.", "Avísame al {v} cuando salgas."]},
    "it": {"L": ["Tel. {v}", "Cellulare: {v}", "Il mio numero di telefono è {v}", "Recapito telefonico: {v}",
                 "Cordiali saluti\nUfficio Clienti\ncell. {v}", "Scrivimi su WhatsApp al {v}", "Telefono: {v}", "Cell.: {v}"],
           "B": ["Chiamami al {v} dopo le 18.", "Sono raggiungibile al {v}.", "è il {v}, grazie", "Contatto: {v}",
                 "Per il ritiro chiamare il {v}.", "Mi trovi al {v} fino a venerdì.", "Richiamare al {v}, grazie."]},
    "pt": {"L": ["Tel.: {v}", "Celular: {v}", "Meu telefone é {v}", "WhatsApp: {v}", "Telefone para contato: {v}",
                 "Atenciosamente,\nSAC Loja Exemplo\nFone: {v}", "Cel: {v}", "Telefone fixo: {v}"],
           "B": ["Me liga no {v} depois das 18h.", "Pode chamar no {v}", "é {v}, valeu", "Contato: {v}",
                 "Me manda mensagem no {v} amanhã", "Qualquer coisa, {v}.", "Liga pro {v} que eu atendo."]},
    "in": {"L": ["Mob: {v}", "Mobile no. {v} pe call karo", "Ph: {v}", "Contact number: {v}", "mera phone number {v} hai",
                 "Regards,\nAccounts Team\nMob. {v}", "Phone (landline): {v}", "WhatsApp number: {v}"],
           "B": ["{v} pe call kar dena shaam ko", "bhai ye raha: {v}", "Kal subah {v} pe baat karte hain", "Contact: {v}",
                 "OK noted, {v}.", "Delivery boy ko bolo {v} pe ring kare", "Sir please call back on {v}"]},
}
REGION_LANGS = {"US": ["en"], "CA": ["en", "fr"], "GB": ["en"], "AU": ["en"], "IN": ["in", "en"], "DE": ["de", "en"],
                "FR": ["fr", "en"], "ES": ["es", "en"], "IT": ["it", "en"], "BR": ["pt", "en"]}

T_KIND = {
    "us_ssn": {"L": ["SSN: {v}", "Social Security Number: {v}", "My SSN is {v}, do you need the last four only?", "SS#: {v}",
                     "| SSN | {v} |", "{{\"ssn\": \"{v}\", \"filing_status\": \"single\"}}", "Employee SSN {v} — W-2 correction requested",
                     "Please verify social security no. {v} against the W-4."],
               "B": ["here you go: {v}", "it's {v}", "Form field 3: {v}", "typed it wrong earlier — correct one is {v}",
                     "{v},2023,W-2,sent", "{v} (please redact before forwarding)", "ok so mine is {v}"]},
    "credit_card": {"L": ["Card number: {v}", "Visa {v}, exp 09/27", "Kartennummer: {v}", "N° de carte : {v}", "Número de tarjeta: {v}",
                          "CC: {v}", "{{\"card_number\": \"{v}\", \"exp\": \"11/26\"}}", "Full card number: {v}",
                          "credit card {v} was charged twice"],
                    "B": ["charge it to {v} please", "{v} — the other one got blocked", "use {v}, same expiry as before",
                          "pls retry with {v}", "Die letzten Ziffern stimmen nicht, hier nochmal komplett: {v}", "ok: {v}",
                          "payment_method,{v},EUR,49.90"]},
    "iban": {"L": ["IBAN: {v}", "Bitte überweisen Sie auf IBAN {v}.", "Mon IBAN : {v}", "IBAN para el reembolso: {v}",
                   "IBAN per il rimborso: {v}", "Rekeningnummer (IBAN): {v}", "{{\"iban\": \"{v}\"}}", "my IBAN is {v} for the deposit refund"],
             "B": ["Refund to {v} please.", "Überweisung bitte auf {v}", "Virement sur {v} svp", "ok, {v} — same as last time",
                   "Please send the deposit back to {v}.", "Accredito su {v}, grazie", "{v} (same as for the rent)"]},
    "email": {"L": ["E-Mail: {v}", "Email: {v}", "Courriel : {v}", "Correo electrónico: {v}", "Indirizzo email: {v}",
                    "E-mail para contato: {v}", "{{\"email\": \"{v}\", \"newsletter\": false}}", "my email is {v} btw"],
              "B": ["cc {v} on the thread", "send the invoice to {v}", "{v} is the right one now", "please add {v} to the distribution list",
                    "Kontakt: {v}", "écris-moi à {v}", "manda pra {v} por favor"]},
    "uk_nino": {"L": ["NI number: {v}", "National Insurance number: {v}", "NINO {v}", "Your National Insurance no. is {v}",
                      "| NI No. | {v} |", "{{\"ni_number\": \"{v}\"}}", "P45 attached; NI number {v}"],
                "B": ["it's {v}", "P60 shows {v}", "here: {v}", "{v} (from the payslip)", "copied from the letter: {v}",
                      "yes, {v} — sorry for the delay", "payroll ref updated to {v}"]},
    "de_tax_id": {"L": ["Steuer-ID: {v}", "Steuerliche Identifikationsnummer: {v}", "Meine Steuer-IdNr. lautet {v}.", "IdNr.: {v}",
                        "Tax ID (Germany): {v}", "Bitte tragen Sie Ihre Steueridentifikationsnummer ein: {v}", "{{\"steuer_id\": \"{v}\"}}"],
                  "B": ["Das ist sie: {v}", "Laut Lohnsteuerbescheinigung: {v}", "{v} – bitte für die Gehaltsabrechnung hinterlegen",
                        "Anbei: {v}", "Hier, aus dem Brief vom Bundeszentralamt: {v}", "ok, {v}", "Korrektur: {v} (nicht die alte)"]},
    "fr_nir": {"L": ["N° de sécurité sociale : {v}", "NIR : {v}", "Numéro de Sécurité sociale : {v}", "Mon numéro de sécu c'est le {v}",
                     "N° INSEE : {v}", "Social security number (France): {v}", "{{\"nir\": \"{v}\"}}"],
               "B": ["Voici : {v}", "C'est le {v}, recopié depuis Ameli", "Pour le dossier : {v}", "{v} — à reporter case 3",
                     "copié depuis l'attestation : {v}", "ok, {v}", "Correction : {v}"]},
    "es_dni": {"L": ["DNI: {v}", "Mi DNI es {v}", "NIF: {v}", "Documento (DNI/NIE): {v}", "DNI del titular: {v}", "{{\"dni\": \"{v}\"}}",
                     "NIE: {v}", "Número de NIE: {v}"],
               "B": ["Aquí lo tienes: {v}", "es {v}", "Para la factura: {v}", "{v} — el que pone en el documento", "Copiado del documento: {v}",
                     "vale, {v}", "Corrijo: {v}"]},
    "it_fiscal_code": {"L": ["Codice fiscale: {v}", "C.F. {v}", "CF: {v}", "Il mio codice fiscale è {v}", "Cod. Fisc.: {v}",
                             "{{\"codice_fiscale\": \"{v}\"}}", "Tax code (Italy): {v}"],
                       "B": ["Eccolo: {v}", "per la fattura: {v}", "{v} — lo trovi sulla tessera sanitaria", "Ecco i dati: {v}", "ok, {v}",
                             "intestare a {v}", "Correggo: {v}"]},
    "in_aadhaar": {"L": ["Aadhaar: {v}", "Aadhaar No. {v}", "mera Aadhaar number {v} hai", "UID: {v}", "आधार संख्या: {v}",
                         "Aadhaar card number {v} link karna hai", "{{\"aadhaar\": \"{v}\"}}"],
                   "B": ["ye lo: {v}", "{v} — KYC ke liye", "ye raha {v}", "For KYC: {v}", "Verified: {v}", "ok, {v}", "sir, {v} hai"]},
    "in_pan": {"L": ["PAN: {v}", "PAN card no. {v}", "mera PAN {v} hai", "Permanent Account Number: {v}", "PAN of deductee: {v}",
                     "{{\"pan\": \"{v}\"}}", "Please quote PAN {v} on Form 16"],
               "B": ["ye lo {v}", "for ITR filing: {v}", "{v} — please update in payroll", "TDS certificate ke liye: {v}", "ok noted {v}",
                     "sir, it's {v}", "correct one: {v}"]},
    "ca_sin": {"L": ["SIN: {v}", "Social Insurance Number: {v}", "NAS : {v}", "My SIN is {v}", "Numéro d'assurance sociale : {v}",
                     "{{\"sin\": \"{v}\"}}", "T4 — employee SIN {v}"],
               "B": ["here it is: {v}", "{v} (from my T4)", "Box 12: {v}", "c'est le {v}", "for payroll: {v}", "ok, {v}", "updated: {v}"]},
    "br_cpf": {"L": ["CPF: {v}", "Meu CPF é {v}", "CPF do titular: {v}", "CPF/CNPJ: {v}", "Informe o CPF na nota: {v}",
                     "{{\"cpf\": \"{v}\"}}", "Nota fiscal — CPF {v}"],
               "B": ["segue: {v}", "é {v}", "pra nota: {v}", "{v} — pode colocar na nota", "ok, {v}", "corrigindo: {v}", "tá aqui: {v}"]},
    "eu_vat": {"L": ["USt-IdNr.: {v}", "VAT number: {v}", "N° TVA intracommunautaire : {v}", "Partita IVA: {v}", "NIF-IVA: {v}",
                     "BTW-nummer: {v}", "VAT ID {v} — reverse charge applies"],
               "B": ["Rechnung bitte an {v} ausstellen", "{v} (reverse charge)", "Facturer à {v}", "ok, {v}", "Invoice to {v}, thanks",
                     "Cliente: {v}", "Bill-to: {v}"]},
    "passport": {"L": ["Passport No.: {v}", "passport number {v}, expires 2031", "Reisepass / Passport No. {v}", "Passeport / Passport : {v}",
                       "Pasaporte / Passport: {v}", "Passaporto / Passport n. {v}", "my passport is {v}",
                       "{{\"passport_number\": \"{v}\", \"nationality\": \"DEU\"}}", "| Passport | {v} |",
                       "Traveller passport {v} — please add to the booking", "Passport no {v} (renewed last year)",
                       "I've updated the passport details to {v}.", "Passport: {v}", "Visa application — passport {v}"],
                 "B": []},
}
KIND_GEN = {"us_ssn": gen_ssn, "credit_card": gen_card, "iban": gen_iban, "email": gen_email, "uk_nino": gen_nino,
            "de_tax_id": gen_idnr, "fr_nir": gen_nir, "it_fiscal_code": gen_cf, "in_aadhaar": gen_aadhaar, "in_pan": gen_pan,
            "ca_sin": gen_sin, "br_cpf": gen_cpf, "eu_vat": gen_vat}
PER_KIND = 14
PER_REGION = 14


MOBILE_CUE = re.compile(r"(?i)mobil|\bcell|handy|portable|móvil|whatsapp|\bmob\b|\bcel\b|celular|\btext\b|mensagem|escríbeme")
LANDLINE_CUE = re.compile(r"(?i)fixe|fijo|fixo|landline|festnetz")


def phone_type_ok(tpl, value, region):
    t = phonenumbers.number_type(phonenumbers.parse(value, region))
    if MOBILE_CUE.search(tpl) and t == phonenumbers.PhoneNumberType.FIXED_LINE:
        return False
    if LANDLINE_CUE.search(tpl) and t != phonenumbers.PhoneNumberType.FIXED_LINE:
        return False
    return True


# country-specific labels: template substring -> allowed value prefixes / passport countries
VAT_LABEL_CC = {"USt-IdNr.": ("DE",), "TVA intracommunautaire": ("FR", "BE"), "Partita IVA": ("IT",), "NIF-IVA": ("ES", "PT"),
                "BTW-nummer": ("NL", "BE")}
PASS_LABEL_CC = {"Reisepass": "DE", "Passeport": "FR", "Pasaporte": "ES", "Passaporto": "IT"}
NATIONALITY = {"US": "USA", "GB": "GBR", "DE": "DEU", "FR": "FRA", "IN": "IND", "ES": "ESP", "IT": "ITA", "CA": "CAN",
               "AU": "AUS", "BR": "BRA"}


def make_row(tpl, value, kind, setname, style):
    tpl = tpl.replace("{{", "\x00").replace("}}", "\x01")
    assert tpl.count("{v}") == 1
    pre, post = tpl.split("{v}")
    pre = pre.replace("\x00", "{").replace("\x01", "}")
    post = post.replace("\x00", "{").replace("\x01", "}")
    text = pre + value + post
    start = len(pre.encode("utf-8"))
    end = start + len(value.encode("utf-8"))
    return {"text": text, "spans": [{"kind": kind, "start": start, "end": end}], "set": setname, "style": style}


def pos_ok(row, value, kind):
    """No other PII-like hit outside the value's own character range."""
    text = row["text"]
    cs = text.index(value)
    ce = cs + len(value)
    for k, s, e, raw in scan(text):
        if e <= cs or s >= ce:
            return False
    return True


def build_positives():
    rng = random.Random(424242)
    rows = []
    # phones
    for region in PHONE_REGIONS:
        langs = REGION_LANGS[region]
        for style in ["labelled"] * (PER_REGION // 2) + ["bare"] * (PER_REGION - PER_REGION // 2):
            key = "L" if style == "labelled" else "B"
            for _ in range(500):
                lang = langs[0] if rng.random() < 0.75 else rng.choice(langs)
                tpl = rng.choice(T_PHONE[lang][key])
                v = gen_phone(rng, region)
                if not phone_type_ok(tpl, v, region):
                    continue
                row = make_row(tpl, v, "phone", f"heldout-phone-{region}", style)
                if row["text"] in {r["text"] for r in rows}:
                    continue
                if pos_ok(row, v, "phone"):
                    row["_value"], row["_region"] = v, region
                    rows.append(row)
                    break
            else:
                raise RuntimeError(region)
    # other kinds
    for kind in list(KIND_GEN) + ["es_dni", "passport"]:
        pass
    order = ["us_ssn", "credit_card", "iban", "email", "uk_nino", "de_tax_id", "fr_nir", "es_dni", "it_fiscal_code",
             "in_aadhaar", "in_pan", "ca_sin", "br_cpf", "eu_vat", "passport"]
    for kind in order:
        L, B = T_KIND[kind]["L"], T_KIND[kind]["B"]
        if kind == "passport":
            styles = ["labelled"] * PER_KIND
        else:
            styles = ["labelled"] * (PER_KIND // 2) + ["bare"] * (PER_KIND - PER_KIND // 2)
        usedL, usedB = [], []
        for i, style in enumerate(styles):
            pool, used = (L, usedL) if style == "labelled" else (B, usedB)
            for _ in range(500):
                avail = [t for t in pool if t not in used] or pool
                tpl = rng.choice(avail)
                tpl0 = tpl
                region = None
                if kind == "es_dni":
                    is_nie = i % 2 == 1
                    if ("NIE" in tpl and not is_nie) or (("DNI:" in tpl or "Mi DNI" in tpl or "DNI del" in tpl or "\"dni\"" in tpl) and is_nie):
                        continue
                    v = gen_nie(rng) if is_nie else gen_dni(rng)
                elif kind == "passport":
                    want = next((c for w, c in PASS_LABEL_CC.items() if w in tpl), None)
                    v, region = gen_passport(rng, want)
                    tpl = tpl.replace("DEU", NATIONALITY[region])
                elif kind == "eu_vat":
                    want = next((c for w, c in VAT_LABEL_CC.items() if w in tpl), None)
                    v = gen_vat(rng, want)
                else:
                    v = KIND_GEN[kind](rng)
                row = make_row(tpl, v, kind, f"heldout-{kind}", style)
                if pos_ok(row, v, kind):
                    row["_value"], row["_region"] = v, region
                    rows.append(row)
                    used.append(tpl0)
                    break
            else:
                raise RuntimeError(kind)
    return rows


# ================================================================ verification & output
ENTITY_WORDS = re.compile(r"(?i)\b(tel|tél|tfno|tlf|phone|mobile?|mob|cell|cellulare|celular|cel|handy|telefon\w*|téléphone|"
                          r"teléfono|telefono|telefone|fone|fon|portable|móvil|whatsapp|ph|ssn|ss#|social|card|karten\w*|carte|tarjeta|"
                          r"visa|iban|e-?mail|courriel|correo|ni|nino|insurance|steuer\w*|idnr|tax|nir|insee|sécu\w*|dni|nie|nif|codice|"
                          r"c\.f|cf|cod|aadhaar|uid|pan|permanent|sin|nas|assurance|cpf|cnpj|ust|vat|tva|iva|btw|passport|passeport|"
                          r"pasaporte|passaporto|reisepass|rekeningnummer|landline|आधार)\b")


def verify(look, pos):
    errs = []
    for r in pos:
        sp = r["spans"][0]
        b = r["text"].encode("utf-8")
        if b[sp["start"]:sp["end"]].decode("utf-8") != r["_value"]:
            errs.append(("offset", r["text"]))
        if not validate_value(sp["kind"], r["_value"], r["_region"]):
            errs.append(("invalid", sp["kind"], r["_value"]))
        if r["style"] == "bare":
            outside = r["text"].replace(r["_value"], " ")
            m = ENTITY_WORDS.search(outside)
            if m:
                errs.append(("bare-has-label", m.group(), r["text"]))
        if sp["kind"] == "passport" and "passport" not in r["text"].lower():
            errs.append(("passport-word", r["text"]))
    for r in look:
        assert r["spans"] == []
    return errs


def main():
    look, report = build_lookalikes()
    pos = build_positives()
    errs = verify(look, pos)
    for e in errs:
        print("ERROR", e)
    if errs:
        sys.exit(1)
    with open(OUT_LOOK, "w", encoding="utf-8") as f:
        for r in look:
            f.write(json.dumps({k: r[k] for k in ("text", "spans", "set", "style")}, ensure_ascii=False) + "\n")
    with open(OUT_POS, "w", encoding="utf-8") as f:
        for r in pos:
            f.write(json.dumps({k: r[k] for k in ("text", "spans", "set", "style")}, ensure_ascii=False) + "\n")
    with open(OUT_REPORT, "w", encoding="utf-8") as f:
        for r in report:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"lookalikes: {len(look)} ({sum(r['_src']=='hand' for r in look)} hand-written) -> {OUT_LOOK}")
    print(f"positives:  {len(pos)} -> {OUT_POS}")
    print("positives per set:", dict(Counter(r["set"] for r in pos)))
    print("positives per style:", dict(Counter(r["style"] for r in pos)))
    kinds = Counter(h["kind"] for r in report for h in r["hits"])
    print(f"look-alike lines with some validator hit: {len(report)}; hits by kind: {dict(kinds)}")


if __name__ == "__main__":
    main()
