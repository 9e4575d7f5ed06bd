#!/usr/bin/env python3
"""Generates the PII evaluation sets in crates/guardrail/tests/data/ (committed; rerun to
reproduce: `.venv/bin/python scripts/pii_sets.py`, needs `phonenumbers` and `python-stdnum`).

- pii_positives.jsonl: phone numbers of 10 countries in the forms people write them (valid
  numbers per libphonenumber's Python port, from its example numbers with random subscriber
  digits), and national identifiers with valid check digits (computed by python-stdnum), each
  in sentences of several styles and languages, with and without a word naming them.
- pii_lookalikes.jsonl: texts that hold no personal data but many numbers: versions, dates and
  times, ISBNs, prices, order and tracking numbers, code, log lines, coordinates, hashes,
  measurements.

Each line: {"text", "spans": [{"kind", "start", "end"}] (UTF-8 byte offsets), "set", "style"}.
"""
import json
import random
import string
import sys
from pathlib import Path

import phonenumbers as pn
from stdnum import isbn as std_isbn
from stdnum import luhn, verhoeff
from stdnum.br import cpf
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.iso7064 import mod_11_10
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.eu import vat as eu_vat

R = random.Random(20261202)
OUT = Path(__file__).resolve().parent.parent / "crates/guardrail/tests/data"


def record(parts, set_name, style):
    """parts: list of str or (kind, value); returns a record with byte offsets."""
    text = b""
    spans = []
    for p in parts:
        if isinstance(p, tuple):
            kind, value = p
            start = len(text)
            text += value.encode()
            spans.append({"kind": kind, "start": start, "end": len(text)})
        else:
            text += p.encode()
    return {"text": text.decode(), "spans": spans, "set": set_name, "style": style}


def fill(template, kind, value, set_name, style):
    a, b = template.split("{}")
    return record([a, (kind, value), b], set_name, style)


# ---------------------------------------------------------------- phones
REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "IN", "BR", "CA", "AU"]
PHONE_TYPES = [pn.PhoneNumberType.MOBILE, pn.PhoneNumberType.FIXED_LINE]


def random_valid(region, kind):
    ex = pn.example_number_for_type(region, kind)
    nsn = str(ex.national_number)
    for _ in range(1000):
        keep = max(2, len(nsn) - R.choice([4, 5, 6]))
        cand = nsn[:keep] + "".join(R.choice(string.digits) for _ in range(len(nsn) - keep))
        n = pn.parse("+" + str(ex.country_code) + cand)
        if pn.is_valid_number(n) and pn.region_code_for_number(n) == region:
            return n
    return ex


def phone_forms(region, n):
    nat = pn.format_number(n, pn.PhoneNumberFormat.NATIONAL)
    intl = pn.format_number(n, pn.PhoneNumberFormat.INTERNATIONAL)
    e164 = pn.format_number(n, pn.PhoneNumberFormat.E164)
    forms = [nat, intl, e164]
    digits = "".join(c for c in nat if c.isdigit())
    if region in ("US", "CA"):
        a, b, c = digits[:3], digits[3:6], digits[6:]
        forms += [f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"1-{a}-{b}-{c}", f"+1 ({a}) {b}-{c}"]
    elif region == "FR":
        forms += [nat.replace(" ", "."), digits]
    elif region == "DE":
        area = nat.split(" ")[0]
        forms += [f"{area}/{nat.split(' ', 1)[1].replace(' ', '')}", f"({area}) {nat.split(' ', 1)[1]}"]
    elif region == "GB":
        forms += [intl.replace("+44 ", "+44 (0)"), digits]
    elif region == "IN":
        forms += [intl.replace(" ", "-"), digits[1:6] + " " + digits[6:]]
    elif region == "BR":
        forms += [nat.replace("(", "").replace(")", "")]
    elif region == "AU":
        forms += [digits]
    elif region == "ES":
        forms += [digits[:3] + " " + digits[3:6] + " " + digits[6:]]
    elif region == "IT":
        forms += [digits]
    return forms


PHONE_LABELLED = [
    "Call me at {} after five.",
    "My phone number is {}.",
    "Tel: {}",
    "You can reach our office on {} during business hours.",
    "Mobile {} (evenings only)",
    "Ruf mich an unter {}, danke!",
    "Mon numéro de téléphone : {}",
    "Llámame al {} cuando puedas.",
    "Il mio cellulare è {}.",
    "Meu telefone é {}.",
    "WhatsApp me on {} if the line is busy.",
    "Contact: Jane Doe, {}",
]
PHONE_BARE = [
    "Please ask for Sam at {} tomorrow.",
    "{}",
    "Emergency line for the site: {}",
    "The customer left {} for the callback.",
    "Kunde erreichbar: {}",
    "I tried {} twice but nobody picked up.",
    "Write down {} before you forget it.",
    "New hire, starts Monday - {}",
]


def phones():
    out = []
    for region in REGIONS:
        for kind in PHONE_TYPES:
            for _ in range(4):
                n = random_valid(region, kind)
                for form in phone_forms(region, n):
                    # A bare run of digits is a phone only with a word saying so (unless it
                    # starts with a trunk prefix 0).
                    labelled = R.random() < 0.5 or (form.isdigit() and not form.startswith("0"))
                    t = R.choice(PHONE_LABELLED if labelled else PHONE_BARE)
                    out.append(fill(t, "phone", form, f"phone-{region}", "labelled" if labelled else "bare"))
    return out


# ---------------------------------------------------------------- identifiers
def digits(n):
    return "".join(R.choice(string.digits) for _ in range(n))


def gen_de_tax_id():
    while True:
        first = R.choice("123456789")
        body = first + digits(9)
        counts = sorted((body.count(d) for d in set(body)), reverse=True)
        if counts[0] in (2, 3) and counts[1:].count(1) == len(counts) - 1:
            if counts[0] == 3 and any(body[i] == body[i + 1] == body[i + 2] for i in range(8)):
                continue
            v = body + mod_11_10.calc_check_digit(body)
            if idnr.is_valid(v):
                return [v, f"{v[:2]} {v[2:5]} {v[5:8]} {v[8:]}"]


def gen_fr_nir():
    while True:
        body = R.choice("12") + f"{R.randrange(40, 99):02d}{R.randrange(1, 13):02d}" + f"{R.randrange(1, 96):02d}" + digits(3) + digits(3)
        v = body + nir.calc_check_digits(body)
        if nir.is_valid(v):
            return [v, f"{v[0]} {v[1:3]} {v[3:5]} {v[5:7]} {v[7:10]} {v[10:13]} {v[13:]}"]


def gen_es_dni():
    if R.random() < 0.5:
        body = digits(8)
        return [body + dni.calc_check_digit(body)]
    body = R.choice("XYZ") + digits(7)
    return [body + nie.calc_check_digit(body)]


def gen_it_cf():
    letters = string.ascii_uppercase
    while True:
        body = ("".join(R.choice(letters) for _ in range(6)) + digits(2) + R.choice("ABCDEHLMPRST")
                + f"{R.choice([R.randrange(1, 32), R.randrange(41, 72)]):02d}" + R.choice(letters) + digits(3))
        v = body + codicefiscale.calc_check_digit(body)
        if codicefiscale.is_valid(v):
            return [v]


def gen_aadhaar():
    while True:
        body = R.choice("23456789") + digits(10)
        v = body + verhoeff.calc_check_digit(body)
        if aadhaar.is_valid(v):
            return [f"{v[:4]} {v[4:8]} {v[8:]}", v, f"{v[:4]}-{v[4:8]}-{v[8:]}"]


def gen_pan():
    letters = string.ascii_uppercase
    v = "".join(R.choice(letters) for _ in range(3)) + R.choice("PCHFATBLJG") + R.choice(letters) + digits(4) + R.choice(letters)
    assert pan.is_valid(v), v
    return [v]


def gen_sin():
    while True:
        body = R.choice("1234567") + digits(7)
        v = body + luhn.calc_check_digit(body)
        if sin.is_valid(v):
            return [f"{v[:3]} {v[3:6]} {v[6:]}", f"{v[:3]}-{v[3:6]}-{v[6:]}", v]


def gen_cpf():
    while True:
        body = digits(9)
        v = body + cpf._calc_check_digits(body)
        if cpf.is_valid(v):
            return [f"{v[:3]}.{v[3:6]}.{v[6:9]}-{v[9:]}", v]


def gen_nino():
    first = [c for c in string.ascii_uppercase if c not in "DFIQUV"]
    second = [c for c in string.ascii_uppercase if c not in "DFIOQUV"]
    while True:
        p = R.choice(first) + R.choice(second)
        if p in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            continue
        d = digits(6)
        s = R.choice("ABCD")
        return [f"{p}{d}{s}", f"{p} {d[:2]} {d[2:4]} {d[4:]} {s}"]


def gen_vat():
    from stdnum.at import uid
    from stdnum.be import vat as be
    from stdnum.de import vat as de
    from stdnum.dk import cvr
    from stdnum.fi import alv
    from stdnum.fr import tva
    from stdnum.it import iva
    from stdnum.nl import btw
    from stdnum.pl import nip
    from stdnum.pt import nif
    while True:
        c = R.choice(["DE", "FR", "IT", "NL", "BE", "AT", "PL", "PT", "DK", "FI"])
        try:
            if c == "DE":
                b = R.choice("123456789") + digits(7)
                v = b + mod_11_10.calc_check_digit(b)
            elif c == "FR":
                siren = digits(8)
                siren = siren + luhn.calc_check_digit(siren)
                v = tva.calc_check_digits(siren) + siren
            elif c == "IT":
                b = digits(7) + f"{R.randrange(1, 100):03d}"
                v = b + luhn.calc_check_digit(b)
            elif c == "NL":
                b = digits(8)
                v = b + str(sum(int(x) * w for x, w in zip(b, range(9, 1, -1))) % 11) + "B01"
            elif c == "BE":
                b = "0" + R.choice("123456789") + digits(6)
                v = b + f"{97 - int(b) % 97:02d}"
            elif c == "AT":
                b = digits(7)
                v = "U" + b + uid.calc_check_digit("U" + b)
            elif c == "PL":
                b = R.choice("123456789") + digits(8)
                v = b + nip.calc_check_digit(b)
            elif c == "PT":
                b = R.choice("125") + digits(7)
                v = b + nif.calc_check_digit(b)
            elif c == "DK":
                b = R.choice("123456789") + digits(6)
                v = b + str((11 - sum(int(x) * w for x, w in zip(b, [2, 7, 6, 5, 4, 3, 2])) % 11) % 11)
            else:
                b = digits(7)
                v = b + alv.calc_check_digit(b)
        except Exception:
            continue
        if eu_vat.is_valid(c + v):
            return [c + v]


def gen_passport():
    return [R.choice([digits(9), R.choice("CFGHJK") + "".join(R.choice("CFGHJKLMNPRTVWXYZ0123456789") for _ in range(8)),
                      digits(2) + "".join(R.choice(string.ascii_uppercase) for _ in range(2)) + digits(5),
                      R.choice(string.ascii_uppercase) + digits(7),
                      "".join(R.choice(string.ascii_uppercase) for _ in range(2)) + digits(7)])]


IDS = {
    "de_tax_id": (gen_de_tax_id, ["Steuer-ID: {}", "Meine Steueridentifikationsnummer lautet {}.", "tax ID {} (Germany)", "IdNr {}"],
                  ["Bitte trag {} in das Formular ein."]),
    "fr_nir": (gen_fr_nir, ["Numéro de sécurité sociale : {}", "NIR {}", "N° INSEE: {}", "my French social security number is {}"],
               ["Assuré {} - dossier en cours", "{}"]),
    "es_dni": (gen_es_dni, ["DNI: {}", "Mi NIE es {}.", "NIF {}", "Spanish ID (DNI) {}"],
               ["Titular {} - alta confirmada", "Adjunto copia, documento {}", "{}"]),
    "it_fiscal_code": (gen_it_cf, ["Codice fiscale: {}", "il mio codice fiscale è {}", "CF {}"],
                       ["Intestatario {}", "{}", "Please bill {} for the order."]),
    "in_aadhaar": (gen_aadhaar, ["Aadhaar: {}", "My Aadhaar number is {}.", "UID {} linked"],
                   ["Applicant {} verified"]),
    "in_pan": (gen_pan, ["PAN: {}", "My PAN card number is {}", "PAN {} for the ITR"],
               ["Assessee {} filed on time", "{}"]),
    "ca_sin": (gen_sin, ["SIN: {}", "my social insurance number is {}", "NAS {}"], []),
    "br_cpf": (gen_cpf, ["CPF: {}", "Meu CPF é {}.", "CPF {} cadastrado"], ["Cliente {} - pedido aprovado"]),
    "uk_nino": (gen_nino, ["NI number: {}", "My National Insurance number is {}.", "NINO {}"],
                ["Employee {} starts on Monday", "{}"]),
    "eu_vat": (gen_vat, ["VAT: {}", "USt-IdNr. {}", "N° TVA intracommunautaire {}", "Partita IVA {}", "BTW-nummer {}", "VAT number {}"],
               ["Supplier {} invoiced us", "{}"]),
    "passport": (gen_passport, ["Passport No. {}", "passport number {}", "Reisepass {}", "Numéro de passeport : {}", "pasaporte {}"], []),
}


def identifiers():
    out = []
    for kind, (gen, labelled, bare) in IDS.items():
        for _ in range(40):
            forms = gen()
            for k, form in enumerate(forms):
                # Compact numeric forms are only recognisable with a word naming them.
                compact_digits = form.isdigit() and len(forms) > 1 and k > 0 or form.isdigit() and kind in ("ca_sin", "de_tax_id", "in_aadhaar", "fr_nir", "br_cpf")
                use_bare = bare and not compact_digits and kind != "passport" and R.random() < 0.4
                t = R.choice(bare if use_bare else labelled)
                out.append(fill(t, kind, form, kind, "bare" if use_bare else "labelled"))
    return out


# ---------------------------------------------------------------- look-alikes
def version():
    return R.choice([
        f"{R.randrange(0, 20)}.{R.randrange(0, 40)}.{R.randrange(0, 200)}",
        f"{R.randrange(1, 7)}.{R.randrange(0, 20)}.{R.randrange(0, 9)}-{R.randrange(1000, 2000)}-azure",
        f"v{R.randrange(0, 5)}.{R.randrange(0, 30)}.{R.randrange(0, 30)}",
        f"{R.randrange(10, 12)}.0.{R.randrange(10000, 30000)}.{R.randrange(100, 5000)}",
        f"{R.randrange(1, 4)}.{R.randrange(0, 13)}.{R.randrange(0, 20)}rc{R.randrange(1, 4)}",
        f"{R.randrange(2019, 2027)}.{R.randrange(1, 13)}.{R.randrange(0, 9)}",
    ])


def date():
    y, m, d = R.randrange(1950, 2030), R.randrange(1, 13), R.randrange(1, 29)
    hh, mm, ss = R.randrange(0, 24), R.randrange(0, 60), R.randrange(0, 60)
    return R.choice([
        f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{m}/{d}/{y}", f"{d:02d}.{m:02d}.{y}",
        f"{y}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z", f"{y}{m:02d}{d:02d}", f"{y}/{m:02d}/{d:02d}",
        f"{y}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}", f"{y}{m:02d}{d:02d}.{hh:02d}{mm:02d}",
        f"{d:02d}-{m:02d}-{y} {hh:02d}:{mm:02d}:{ss:02d}",
    ])


def isbn():
    from stdnum import ean
    body = R.choice(["978", "979"]) + digits(9)
    v = body + ean.calc_check_digit(body)
    hyphenated = std_isbn.format(v)
    return R.choice([hyphenated, v, hyphenated.replace("-", " "), std_isbn.format(std_isbn.to_isbn10(v)) if v.startswith("978") else v])


def price():
    a = R.randrange(1, 5000000)
    return R.choice([f"${a:,}.{R.randrange(100):02d}", f"{a:,} €".replace(",", "."), f"€{a // 100},{R.randrange(100):02d}",
                     f"£{a:,}", f"USD {a:,}", f"{a:,}".replace(",", " ") + " EUR", f"₹{a:,}", f"{a / 100:.2f} CHF"])


def order():
    return R.choice([
        f"{digits(3)}-{digits(7)}-{digits(7)}", f"#{digits(6)}", f"ORD-{digits(8)}", f"{digits(4)}-{digits(4)}-{digits(4)}",
        f"1Z{''.join(R.choice(string.ascii_uppercase + string.digits) for _ in range(16))}", digits(12), digits(15), digits(20),
        f"{digits(4)} {digits(4)} {digits(4)} {digits(4)} {digits(4)} {digits(2)}", f"INV-{R.randrange(2019, 2027)}-{digits(5)}",
        f"{digits(3)} {digits(3)} {digits(3)}", f"{digits(2)}-{digits(7)}",
    ])


def coord():
    lat, lon = R.uniform(-90, 90), R.uniform(-180, 180)
    return R.choice([f"{lat:.4f}, {lon:.4f}", f"{abs(lat):.6f}° {'N' if lat > 0 else 'S'}, {abs(lon):.6f}° {'E' if lon > 0 else 'W'}",
                     f"({lat:.5f}, {lon:.5f})", f"lat={lat:.4f}&lon={lon:.4f}"])


def hexs(n):
    return "".join(R.choice("0123456789abcdef") for _ in range(n))


def measure():
    return R.choice([
        f"{R.uniform(0, 1000):.3f} ms", f"{R.randrange(1, 10**9):,} bytes", f"{R.uniform(0, 100):.2f}%",
        f"{R.randrange(1000, 99999999)} rows", f"{R.randrange(1, 10**7)} requests", f"{R.uniform(0, 10):.14f}",
        f"{R.randrange(100, 999)} {R.randrange(100, 999)} {R.randrange(100, 999)} people",
        f"{R.randrange(10**6, 10**10)} tokens", f"{R.randrange(1, 65535)}",
    ])


LOOKALIKE = {
    "version": (version, [
        "Download build {}.", "Upgraded the kernel to {} last night.", "Works on Python {} but not later.",
        "pip install requests=={}", "Release {} shipped with the fix.", "We pinned node to {} in CI.",
        "Firmware {} bricks the router, roll back.", "The changelog for {} mentions it.", "Version: {}",
    ]),
    "date": (date, [
        "Release {} shipped.", "Meeting moved to {}.", "The invoice is dated {}.", "Logged at {} UTC.",
        "Born in the spring, the project started {}.", "Deadline: {}", "created_at = '{}'", "Backup from {} restored.",
    ]),
    "isbn": (isbn, ["ISBN {} is the first edition.", "Cite it as ISBN: {}.", "The library lists {} for the reprint.", "{} (paperback)"]),
    "price": (price, ["The quote came to {} including tax.", "Budget: {}", "It sold for {} at auction.", "Revenue hit {} this quarter.",
                      "Total {} due on receipt."]),
    "order": (order, ["Your order {} has shipped.", "Tracking number: {}", "Ref {} in the subject line please.",
                      "Parcel {} is out for delivery.", "Invoice {} is overdue.", "See ticket {} for details.",
                      "Batch {} failed QA.", "Claim {} was approved.", "Serial {} is under warranty."]),
    "code": (lambda: R.choice([
        f"timeout = {R.randrange(1000, 120000)}", f"for i in range({R.randrange(10, 100000)}):",
        f"int x = {R.randrange(10**6, 10**9)};", f"SELECT * FROM t WHERE id = {R.randrange(10**6, 10**11)};",
        f"port: {R.randrange(1024, 65535)}", f"assert f({R.randrange(100, 999)}) == {R.randrange(10**6, 10**10)}",
        f"const MAX = {R.randrange(10**8, 10**12)}n;", f"arr[{R.randrange(0, 99)}] = {R.uniform(0, 1e6):.6f}",
        f"chmod {R.choice(['755', '644', '600'])} run.sh && ./run.sh --seed {R.randrange(10**6, 10**10)}",
        f"git cherry-pick {hexs(7)} {hexs(7)}", f"docker run -p {R.randrange(1000, 9999)}:{R.randrange(1000, 9999)} img:{version()}",
    ]), ["{}", "Why does `{}` fail?", "In the snippet `{}` the loop never ends."]),
    "log": (lambda: R.choice([
        f"{date()} ERROR [pid {R.randrange(100, 99999)}] request {hexs(8)} took {R.randrange(1, 9999)} ms",
        f"[{R.uniform(0, 99999):.6f}] usb {R.randrange(1, 4)}-{R.randrange(1, 9)}: new device number {R.randrange(1, 99)}",
        f"GET /api/v1/items/{R.randrange(10**6, 10**10)} 200 {R.randrange(100, 99999)} {R.uniform(0, 2):.3f}s",
        f"INFO worker-{R.randrange(1, 64)} processed {R.randrange(10**3, 10**8)} events in {R.uniform(0, 100):.2f}s",
        f"{R.randrange(1600000000, 1800000000)} WARN disk at {R.randrange(50, 99)}%",
        f"commit {hexs(40)}", f"sha256:{hexs(64)}", f"Build #{R.randrange(1000, 99999)} finished: {R.randrange(10, 9999)} tests passed",
    ]), ["{}"]),
    "coord": (coord, ["The site is at {}.", "GPS {}", "Drop pin: {}", "Coordinates: {}"]),
    "hash": (lambda: R.choice([hexs(32), hexs(40), f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}", f"{R.randrange(10**9, 10**10)}{hexs(6)}"]),
             ["Checksum {} matches.", "id: {}", "The object {} was deleted.", "Token fingerprint {}"]),
    "measure": (measure, ["The ratio was {} after 1000000 runs.", "p99 latency {}", "We stored {}.", "It scored {} on the benchmark.",
                          "The city has {}.", "{} in total"]),
    "ssn_invalid": (lambda: R.choice([f"000-{digits(2)}-{digits(4)}", f"666-{digits(2)}-{digits(4)}", f"9{digits(2)}-{digits(2)}-{digits(4)}",
                                      f"{digits(3)}-00-{digits(4)}"]),
                    ["SSN-like test value {} is invalid by design.", "Use {} as a dummy in the fixture."]),
}


def lookalikes():
    out = []
    for cat, (gen, templates) in LOOKALIKE.items():
        for _ in range(60):
            out.append(record([R.choice(templates).replace("{}", gen())], "lookalike", cat))
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    pos = phones() + identifiers()
    neg = lookalikes()
    for name, rows in [("pii_positives.jsonl", pos), ("pii_lookalikes.jsonl", neg)]:
        with open(OUT / name, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} texts", file=sys.stderr)


if __name__ == "__main__":
    main()
