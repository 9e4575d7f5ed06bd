//! Check digits and structural rules, each on ASCII digits or uppercase alphanumerics.

/// The value of an ASCII digit.
pub(super) fn dv(c: u8) -> u32 {
    u32::from(c.wrapping_sub(b'0'))
}

/// Luhn (cards, Canadian SIN).
pub(super) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = dv(d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// ISO 13616 mod-97 (IBAN): the country code and check digits moved to the end.
pub(super) fn mod97_iban(iban: &[u8]) -> bool {
    if iban.len() < 15 || !iban[2].is_ascii_digit() || !iban[3].is_ascii_digit() {
        return false;
    }
    mod97_alnum(iban[4..].iter().chain(&iban[..4])) == Some(1)
}

/// The remainder mod 97 of digits and upper-case letters read as numbers (A = 10 … Z = 35),
/// as ISO 7064 MOD 97-10 reads them; `None` for any other byte.
fn mod97_alnum<'a>(chars: impl Iterator<Item = &'a u8>) -> Option<u32> {
    let mut r: u32 = 0;
    for &c in chars {
        let v = match c {
            b'0'..=b'9' => dv(c),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    Some(r)
}

/// The remainder of a decimal number (as ASCII digits) divided by `m`.
pub(super) fn rem(digits: &[u8], m: u64) -> u64 {
    digits
        .iter()
        .fold(0u64, |r, &c| (r * 10 + u64::from(dv(c))) % m)
}

const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/// Verhoeff (Indian Aadhaar): the check digit is the last.
pub(super) fn verhoeff(digits: &[u8]) -> bool {
    let mut c = 0u8;
    for (i, &d) in digits.iter().rev().enumerate() {
        let v = d.wrapping_sub(b'0');
        if v > 9 {
            return false;
        }
        c = VERHOEFF_D[usize::from(c)][usize::from(VERHOEFF_P[i % 8][usize::from(v)])];
    }
    c == 0
}

/// ISO 7064 MOD 11,10 over all digits but the last, which is the check digit (German tax
/// id, German VAT number).
pub(super) fn iso7064_mod11_10(digits: &[u8]) -> bool {
    let Some((&check, body)) = digits.split_last() else {
        return false;
    };
    let mut p = 10u32;
    for &d in body {
        let mut s = (dv(d) + p) % 10;
        if s == 0 {
            s = 10;
        }
        p = (2 * s) % 11;
    }
    (11 - p) % 10 == dv(check)
}

/// German tax id (Steuer-ID): 11 digits, no leading zero, in the first ten exactly one digit
/// occurs twice or three times (three only not in a row) and the rest at most once, MOD 11,10.
pub(super) fn de_tax_id(d: &[u8]) -> bool {
    if d.len() != 11 || d[0] == b'0' {
        return false;
    }
    let mut counts = [0u8; 10];
    for &c in &d[..10] {
        counts[usize::from(c - b'0')] += 1;
    }
    let repeated: Vec<u8> = counts.iter().copied().filter(|&n| n > 1).collect();
    let shape = match repeated.as_slice() {
        [2] => true,
        [3] => !d[..10].windows(3).any(|w| w[0] == w[1] && w[1] == w[2]),
        _ => false,
    };
    shape && iso7064_mod11_10(d)
}

/// Brazilian CPF: 11 digits, two mod-11 check digits, not all the same digit.
pub(super) fn br_cpf(d: &[u8]) -> bool {
    if d.len() != 11 || d.iter().all(|&c| c == d[0]) {
        return false;
    }
    let check = |n: usize| {
        let s: u32 = d[..n]
            .iter()
            .zip((2..=u32::try_from(n + 1).unwrap_or(12)).rev())
            .map(|(&c, w)| dv(c) * w)
            .sum();
        let r = (s * 10) % 11;
        if r == 10 { 0 } else { r }
    };
    check(9) == dv(d[9]) && check(10) == dv(d[10])
}

/// French NIR (INSEE number): 13 digits (Corsica's `2A`/`2B` department allowed) and a two-digit
/// key equal to 97 − (number mod 97); sex 1, 2 (or 3, 4, 7, 8 for provisional numbers), month
/// 01–12 or 20–42 / 50–99 (unknown or provisional).
pub(super) fn fr_nir(c: &[u8]) -> bool {
    if c.len() != 15 || !matches!(c[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
        return false;
    }
    let month = dv(c[3]) * 10 + dv(c[4]);
    if !(c[3].is_ascii_digit() && c[4].is_ascii_digit())
        || !((1..=12).contains(&month) || (20..=42).contains(&month) || month >= 50)
    {
        return false;
    }
    // Corsica: 2A counts as 19, 2B as 18 (after subtracting from the number).
    let mut body = [0u8; 13];
    body.copy_from_slice(&c[..13]);
    let shift = match (c[5], c[6]) {
        (b'2', b'A' | b'a') => {
            body[6] = b'0';
            1_000_000
        }
        (b'2', b'B' | b'b') => {
            body[6] = b'0';
            2_000_000
        }
        _ => 0,
    };
    if !body.iter().all(u8::is_ascii_digit) || !c[13..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = body.iter().fold(0u64, |r, &x| r * 10 + u64::from(dv(x)));
    let n = n.saturating_sub(shift);
    let key = u64::from(dv(c[13]) * 10 + dv(c[14]));
    97 - n % 97 == key
}

/// Spanish DNI (8 digits and a letter) or NIE (X, Y or Z, 7 digits and a letter): the letter is
/// the number mod 23 in `TRWAGMYFPDXBNJZSQVHLCKE`.
pub(super) fn es_dni_nie(t: &[u8]) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    if t.len() != 9 {
        return false;
    }
    let mut digits = [0u8; 8];
    digits.copy_from_slice(&t[..8]);
    match digits[0].to_ascii_uppercase() {
        b'X' => digits[0] = b'0',
        b'Y' => digits[0] = b'1',
        b'Z' => digits[0] = b'2',
        _ => {}
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let r = usize::try_from(rem(&digits, 23)).unwrap_or(0);
    t[8].to_ascii_uppercase() == LETTERS[r]
}

/// Italian codice fiscale: 16 characters (6 letters, then date and place with omocodia letters
/// allowed in digit positions), the last a check letter.
pub(super) fn it_fiscal_code(t: &[u8]) -> bool {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    const OMOCODIA: &[u8] = b"LMNPQRSTUV";
    if t.len() != 16 {
        return false;
    }
    let u: Vec<u8> = t.iter().map(u8::to_ascii_uppercase).collect();
    let digitish = |c: u8| c.is_ascii_digit() || OMOCODIA.contains(&c);
    let letters = |r: std::ops::Range<usize>| u[r].iter().all(u8::is_ascii_uppercase);
    let shape = letters(0..6)
        && u[6..8].iter().all(|&c| digitish(c))
        && b"ABCDEHLMPRST".contains(&u[8])
        && u[9..11].iter().all(|&c| digitish(c))
        && u[11].is_ascii_uppercase()
        && u[12..15].iter().all(|&c| digitish(c))
        && u[15].is_ascii_uppercase();
    if !shape {
        return false;
    }
    let mut sum = 0u32;
    for (i, &c) in u[..15].iter().enumerate() {
        let v = if c.is_ascii_digit() {
            dv(c)
        } else {
            u32::from(c - b'A')
        };
        sum += if i % 2 == 0 {
            ODD[usize::try_from(v).unwrap_or(0)]
        } else {
            v
        };
    }
    u32::from(u[15] - b'A') == sum % 26
}

/// Indian PAN: five letters (the fourth the holder's type), four digits, a letter.
pub(super) fn in_pan(t: &[u8]) -> bool {
    t.len() == 10
        && t[..5].iter().all(u8::is_ascii_uppercase)
        && b"PCHFATBLJG".contains(&t[3])
        && t[5..9].iter().all(u8::is_ascii_digit)
        && t[9].is_ascii_uppercase()
}

/// UK National Insurance number: two prefix letters (not D, F, I, Q, U, V first; not D, F, I,
/// O, Q, U, V second; not BG, GB, KN, NK, NT, TN, ZZ), six digits, a suffix A–D.
pub(super) fn uk_nino(t: &[u8]) -> bool {
    t.len() == 9
        && t[..2].iter().all(u8::is_ascii_uppercase)
        && !b"DFIQUV".contains(&t[0])
        && !b"DFIOQUV".contains(&t[1])
        && !matches!(
            &t[..2],
            b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ"
        )
        && t[2..8].iter().all(u8::is_ascii_digit)
        && (b'A'..=b'D').contains(&t[8])
}

/// ISBN-13 (978/979 prefix, weights 1 and 3) or ISBN-10 (weights 10..1, mod 11; X = 10).
pub(super) fn isbn(d: &[u8]) -> bool {
    match d.len() {
        13 => {
            (d.starts_with(b"978") || d.starts_with(b"979"))
                && d.iter()
                    .enumerate()
                    .map(|(i, &c)| dv(c) * if i % 2 == 0 { 1 } else { 3 })
                    .sum::<u32>()
                    .is_multiple_of(10)
        }
        10 => d
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let v = if c == b'X' || c == b'x' { 10 } else { dv(c) };
                v * (10 - u32::try_from(i).unwrap_or(0))
            })
            .sum::<u32>()
            .is_multiple_of(11),
        _ => false,
    }
}

/// An EU (or UK, Swiss) VAT number: country prefix and the national part, with the national
/// check digit where the format has a simple one. `None` when the shape is not a VAT number
/// of that country; `Some(false)` when the shape fits but there is no check to run.
pub(super) fn vat(country: &[u8], body: &[u8]) -> Option<bool> {
    let digits = body.iter().all(u8::is_ascii_digit);
    let n = body.len();
    let weighted = |w: &[u32]| -> u32 { body.iter().zip(w).map(|(&c, &w)| dv(c) * w).sum() };
    match country {
        b"DE" if digits && n == 9 => Some(iso7064_mod11_10(body)),
        b"AT" if n == 9 && body[0] == b'U' && body[1..].iter().all(u8::is_ascii_digit) => {
            // Luhn-like over the 7 digits after U, check digit last.
            let d = &body[1..];
            let mut s = 0u32;
            for (i, &c) in d[..7].iter().enumerate() {
                let v = dv(c);
                s += if i % 2 == 1 {
                    (v * 2) / 10 + (v * 2) % 10
                } else {
                    v
                };
            }
            Some((10 - (s + 4) % 10) % 10 == dv(d[7]))
        }
        b"BE" if digits && n == 10 && matches!(body[0], b'0' | b'1') => {
            Some(97 - rem(&body[..8], 97) == u64::from(dv(body[8]) * 10 + dv(body[9])))
        }
        b"FR" if n == 11 && body[2..].iter().all(u8::is_ascii_digit) => {
            if body[..2].iter().all(u8::is_ascii_digit) {
                let siren = rem(&body[2..], 97);
                let key = u64::from(dv(body[0]) * 10 + dv(body[1]));
                Some((12 + 3 * siren) % 97 == key)
            } else {
                Some(false)
            }
        }
        b"IT" if digits && n == 11 => Some(luhn(body)),
        b"NL" if n == 12 && body[9] == b'B' => {
            let nine = &body[..9];
            if !nine.iter().all(u8::is_ascii_digit) || !body[10..].iter().all(u8::is_ascii_digit) {
                return None;
            }
            let s: u32 = nine[..8]
                .iter()
                .zip((2..=9).rev())
                .map(|(&c, w)| dv(c) * w)
                .sum();
            // The 2020 sole-proprietor numbers pass mod 97 of "NL" + body instead.
            Some(s % 11 == dv(nine[8]) || mod97_alnum(b"NL".iter().chain(body)) == Some(1))
        }
        b"PL" if digits && n == 10 => {
            let s = weighted(&[6, 5, 7, 2, 3, 4, 5, 6, 7]) % 11;
            Some(s != 10 && s == dv(body[9]))
        }
        b"PT" if digits && n == 9 => {
            let s = weighted(&[9, 8, 7, 6, 5, 4, 3, 2]) % 11;
            let c = if s < 2 { 0 } else { 11 - s };
            Some(c == dv(body[8]))
        }
        b"SE" if digits && n == 12 && body.ends_with(b"01") => Some(luhn(&body[..10])),
        b"DK" if digits && n == 8 => Some(weighted(&[2, 7, 6, 5, 4, 3, 2, 1]).is_multiple_of(11)),
        b"FI" if digits && n == 8 => {
            let s = weighted(&[7, 9, 10, 5, 8, 4, 2]) % 11;
            Some(s != 1 && (if s == 0 { 0 } else { 11 - s }) == dv(body[7]))
        }
        b"ES" if n == 9 && body[1..8].iter().all(u8::is_ascii_digit) => {
            if body[0].is_ascii_digit() || matches!(body[0], b'X' | b'Y' | b'Z') {
                Some(es_dni_nie(body))
            } else if body[0].is_ascii_uppercase() {
                Some(false)
            } else {
                None
            }
        }
        b"IE" if (8..=9).contains(&n) && body[..7].iter().all(u8::is_ascii_digit) => Some(false),
        b"LU" if digits && n == 8 => {
            Some(rem(&body[..6], 89) == u64::from(dv(body[6]) * 10 + dv(body[7])))
        }
        b"GB" | b"XI" if digits && (n == 9 || n == 12) => {
            // Remainder 0 or 42, and 55 for the numbers issued since 2010 (from 100 on).
            let r = (weighted(&[8, 7, 6, 5, 4, 3, 2]) + dv(body[7]) * 10 + dv(body[8])) % 97;
            Some(r == 0 || (num3(body) >= 100 && (r == 42 || r == 55)))
        }
        b"EL" | b"CY" | b"CZ" | b"SK" | b"HU" | b"SI" | b"HR" | b"RO" | b"BG" | b"LT" | b"LV"
        | b"EE" | b"MT"
            if (8..=12).contains(&n) && body[..n - 1].iter().all(u8::is_ascii_digit) =>
        {
            Some(false)
        }
        b"CH" if n == 9 && digits => Some(false),
        _ => None,
    }
}

fn num3(d: &[u8]) -> u32 {
    d[..3].iter().fold(0, |a, &c| a * 10 + dv(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_and_invalid_values() {
        assert!(luhn(b"4111111111111111") && !luhn(b"4111111111111112"));
        assert!(mod97_iban(b"GB82WEST12345698765432") && !mod97_iban(b"GB82WEST12345698765433"));
        assert!(verhoeff(b"2363") && !verhoeff(b"2364"));
        assert!(verhoeff(b"499118665246") && !verhoeff(b"499118665247"));
        assert!(de_tax_id(b"86095742719") && !de_tax_id(b"86095742718"));
        assert!(de_tax_id(b"47036892816"));
        assert!(br_cpf(b"52998224725") && !br_cpf(b"52998224726") && !br_cpf(b"11111111111"));
        assert!(fr_nir(b"255081416802538") && !fr_nir(b"255081416802539"));
        assert!(es_dni_nie(b"12345678Z") && !es_dni_nie(b"12345678A"));
        assert!(es_dni_nie(b"X1234567L") && !es_dni_nie(b"X1234567A"));
        assert!(it_fiscal_code(b"RSSMRA85T10A562S") && !it_fiscal_code(b"RSSMRA85T10A562T"));
        assert!(in_pan(b"ABCPE1234F") && !in_pan(b"ABCDE1234F"));
        assert!(uk_nino(b"AB123456C") && !uk_nino(b"QQ123456C") && !uk_nino(b"GB123456A"));
        assert!(isbn(b"9783161484100") && !isbn(b"9783161484101"));
        assert!(isbn(b"0306406152") && !isbn(b"0306406153"));
        assert_eq!(vat(b"DE", b"136695976"), Some(true));
        assert_eq!(vat(b"DE", b"136695977"), Some(false));
        assert_eq!(vat(b"FR", b"40303265045"), Some(true));
        assert_eq!(vat(b"IT", b"00743110157"), Some(true));
        assert_eq!(vat(b"BE", b"0403170701"), Some(true));
        assert_eq!(vat(b"NL", b"004495445B01"), Some(true));
        assert_eq!(vat(b"AT", b"U13585627"), Some(true));
        assert_eq!(vat(b"PL", b"5260250274"), Some(true));
        assert_eq!(vat(b"PT", b"501964843"), Some(true));
        assert_eq!(vat(b"GB", b"693628450"), Some(true));
    }
}
