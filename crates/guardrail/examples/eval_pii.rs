//! Per-entity precision and recall of the built-in PII detectors on Presidio's synthetic PII
//! set: `cargo run --release -p infergate-guardrail --example eval_pii [PATH]` (default
//! `../shared/data/pii/synth_dataset_v2.json`). A prediction is a true positive when it overlaps
//! a labelled span of the same type; any other prediction of a type is a false positive; a
//! labelled span no prediction overlaps is a false negative.

use std::collections::BTreeMap;

use infergate_guardrail::detect::{EntityKind, scan_pii};

fn gold_kind(label: &str) -> Option<EntityKind> {
    Some(match label {
        "EMAIL_ADDRESS" => EntityKind::Email,
        "PHONE_NUMBER" => EntityKind::Phone,
        "CREDIT_CARD" => EntityKind::CreditCard,
        "IBAN_CODE" => EntityKind::Iban,
        "US_SSN" => EntityKind::UsSsn,
        "IP_ADDRESS" => EntityKind::Ipv4,
        _ => return None,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/pii/synth_dataset_v2.json".into());
    let data: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let verbose = std::env::var_os("VERBOSE").is_some();
    // (tp, fp, fn) per kind
    let mut stats: BTreeMap<&'static str, (u32, u32, u32)> = BTreeMap::new();
    for item in &data {
        let text = item["full_text"].as_str().unwrap_or_default();
        // Presidio's offsets are character offsets: convert to bytes.
        let byte_at: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let gold: Vec<(EntityKind, usize, usize)> = item["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let k = gold_kind(s["entity_type"].as_str()?)?;
                let a = byte_at[usize::try_from(s["start_position"].as_u64()?).ok()?];
                let b = byte_at[usize::try_from(s["end_position"].as_u64()?).ok()?];
                Some((k, a, b))
            })
            .collect();
        let found = scan_pii(text);
        let norm = |k: EntityKind| {
            if k == EntityKind::Ipv6 {
                EntityKind::Ipv4
            } else {
                k
            }
        };
        for f in &found {
            let k = norm(f.kind);
            let hit = gold
                .iter()
                .any(|g| g.0 == k && f.start < g.2 && g.1 < f.end);
            let e = stats.entry(k.as_str()).or_default();
            if hit {
                e.0 += 1;
            } else {
                e.1 += 1;
                if verbose {
                    eprintln!("FP {:?} {:?} in {:?}", k, &text[f.start..f.end], text);
                }
            }
        }
        for g in &gold {
            if !found
                .iter()
                .any(|f| norm(f.kind) == g.0 && f.start < g.2 && g.1 < f.end)
            {
                stats.entry(g.0.as_str()).or_default().2 += 1;
                if verbose {
                    eprintln!("FN {:?} {:?} in {:?}", g.0, &text[g.1..g.2], text);
                }
            }
        }
    }
    println!("| entity | labelled | precision | recall | TP | FP | FN |");
    println!("|---|---|---|---|---|---|---|");
    for (k, (tp, fp, fn_)) in &stats {
        let p = f64::from(*tp) / f64::from((tp + fp).max(1));
        let r = f64::from(*tp) / f64::from((tp + fn_).max(1));
        println!(
            "| {k} | {} | {p:.3} | {r:.3} | {tp} | {fp} | {fn_} |",
            tp + fn_
        );
    }
    Ok(())
}
