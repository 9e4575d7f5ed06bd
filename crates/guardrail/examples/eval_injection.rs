//! Precision and recall of the prompt-injection scorer on `../shared/data/jailbreak`
//! (`combined_labeled.jsonl`: positives are jailbreaks and injections; negatives the benign
//! sets, XSTest's look-alikes included). The weights and threshold were chosen on the "train"
//! half; report the "test" half. Halves: SHA-1 of the text, odd = test.
//! `cargo run --release -p infergate-guardrail --example eval_injection [PATH]`.

use infergate_guardrail::detect::{DEFAULT_INJECTION_THRESHOLD, injection_score};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/jailbreak/combined_labeled.jsonl".into());
    let text = std::fs::read_to_string(&path)?;
    let mut rows = Vec::new();
    for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let t = v["text"].as_str().unwrap_or_default().to_owned();
        let label = v["label"].as_u64() == Some(1);
        let source = v["source"].as_str().unwrap_or_default().to_owned();
        let digest = sha1_smol::Sha1::from(t.as_bytes()).digest().bytes();
        let test = digest[19] % 2 == 1;
        rows.push((t, label, source, test));
    }
    println!("threshold {DEFAULT_INJECTION_THRESHOLD}\n");
    println!("| split | texts | precision | recall | TP | FP | FN | TN |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, want) in [("train", Some(false)), ("test", Some(true)), ("all", None)] {
        let (mut tp, mut fp, mut fn_, mut tn) = (0u32, 0u32, 0u32, 0u32);
        for (t, label, _, test) in &rows {
            if want.is_some_and(|w| w != *test) {
                continue;
            }
            let hit = injection_score(t).0 >= DEFAULT_INJECTION_THRESHOLD;
            match (hit, *label) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => tn += 1,
            }
        }
        let p = f64::from(tp) / f64::from((tp + fp).max(1));
        let r = f64::from(tp) / f64::from((tp + fn_).max(1));
        println!(
            "| {name} | {} | {p:.3} | {r:.3} | {tp} | {fp} | {fn_} | {tn} |",
            tp + fp + fn_ + tn
        );
    }
    println!("\nRecall by source (all):\n");
    let mut by: std::collections::BTreeMap<&str, (u32, u32)> = std::collections::BTreeMap::new();
    for (t, label, src, _) in &rows {
        let hit = injection_score(t).0 >= DEFAULT_INJECTION_THRESHOLD;
        let e = by.entry(src.as_str()).or_default();
        e.1 += 1;
        if hit == *label {
            e.0 += 1;
        }
    }
    println!("| source | correct | texts |");
    println!("|---|---|---|");
    for (s, (ok, n)) in by {
        println!("| {s} | {ok} | {n} |");
    }
    Ok(())
}
