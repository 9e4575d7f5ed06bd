//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::missing_panics_doc)]

use std::path::PathBuf;

use infergate_translate::{
    Options, Protocol, StreamDecoder, StreamEvent, Usage,
    ir::{BlockKind, FinishReason},
};
use serde_json::Value;

/// The shared captured data (`/work/shared/data` next to the repository), or `None` with a
/// printed reason; under `CI` its absence is a failure.
pub fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the captured provider data is missing at {} (CI is set, so this fails)",
        dir.display()
    );
    eprintln!(
        "SKIPPED: the captured provider data is missing at {}",
        dir.display()
    );
    None
}

pub fn read(dir: &std::path::Path, rel: &str) -> Vec<u8> {
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// What a stream says, whatever the protocol.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Text deltas, one entry per event.
    pub text_deltas: Vec<String>,
    pub reasoning: String,
    pub signatures: Vec<String>,
    /// (id, name, arguments as JSON).
    pub calls: Vec<(String, String, Value)>,
    pub finish: Option<FinishReason>,
    pub usage: Usage,
    pub error: bool,
    pub stopped: bool,
}

impl Summary {
    pub fn text(&self) -> String {
        self.text_deltas.concat()
    }
}

pub fn summarize(events: &[StreamEvent]) -> Summary {
    let mut s = Summary::default();
    let mut args: Vec<(usize, String)> = Vec::new();
    let mut call_blocks: Vec<(usize, String, String)> = Vec::new();
    for ev in events {
        match ev {
            StreamEvent::BlockStart {
                index,
                kind: BlockKind::ToolCall { id, name },
            } => {
                call_blocks.push((*index, id.clone(), name.clone()));
                args.push((*index, String::new()));
            }
            StreamEvent::TextDelta { text, .. } if !text.is_empty() => {
                s.text_deltas.push(text.clone());
            }
            StreamEvent::ReasoningDelta { text, .. } => s.reasoning.push_str(text),
            StreamEvent::SignatureDelta { signature, .. } => s.signatures.push(signature.clone()),
            StreamEvent::ToolArgsDelta { index, json } => {
                if let Some((_, a)) = args.iter_mut().find(|(i, _)| i == index) {
                    a.push_str(json);
                }
            }
            StreamEvent::Usage(u) => u.apply(&mut s.usage),
            StreamEvent::Finish { reason, .. } => s.finish = Some(reason.clone()),
            StreamEvent::Error(_) => s.error = true,
            StreamEvent::MessageStop => s.stopped = true,
            _ => {}
        }
    }
    for (index, id, name) in call_blocks {
        let a = args
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        let v = if a.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(&a).unwrap_or(Value::String(a))
        };
        s.calls.push((id, name, v));
    }
    s
}

/// Decodes a whole stream of `protocol`, fed in pieces of `step` bytes (0: at once).
pub fn decode_stream(
    protocol: Protocol,
    bytes: &[u8],
    step: usize,
) -> (Vec<StreamEvent>, Result<(), infergate_translate::Error>) {
    let opts = Options::default();
    let mut d = StreamDecoder::new(protocol, &opts);
    let mut evs = Vec::new();
    let chunks: Vec<&[u8]> = if step == 0 {
        vec![bytes]
    } else {
        bytes.chunks(step).collect()
    };
    for c in chunks {
        if let Err(e) = d.feed(c, &mut evs) {
            return (evs, Err(e));
        }
    }
    let r = d.finish(&mut evs);
    (evs, r)
}

/// Vercel's `chunks.txt` (one JSON per line) as the wire bytes: SSE for Gemini and OpenAI,
/// event-stream frames for Bedrock (`{"<eventType>": {...}}` per line).
pub fn chunks_to_wire(protocol: Protocol, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if protocol == Protocol::Bedrock {
            let v: Value = serde_json::from_str(line).expect("json line");
            let (k, inner) = v
                .as_object()
                .and_then(|o| o.iter().next())
                .expect("one key");
            infergate_translate::eventstream::encode_event(
                k,
                &serde_json::to_vec(inner).expect("json"),
                &mut out,
            );
        } else {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\n\n");
        }
    }
    out
}

/// Every delta names a started, unstopped block; blocks start once; at most one is open.
pub fn check_well_formed(name: &str, events: &[StreamEvent]) {
    let mut started = Vec::new();
    let mut open: Option<usize> = None;
    for ev in events {
        match ev {
            StreamEvent::BlockStart { index, .. } => {
                assert!(
                    !started.contains(index),
                    "{name}: block {index} started twice"
                );
                assert!(
                    open.is_none(),
                    "{name}: block {index} starts while {open:?} is open"
                );
                started.push(*index);
                open = Some(*index);
            }
            StreamEvent::TextDelta { index, .. }
            | StreamEvent::ToolArgsDelta { index, .. }
            | StreamEvent::ReasoningDelta { index, .. }
            | StreamEvent::SignatureDelta { index, .. } => {
                assert_eq!(
                    open,
                    Some(*index),
                    "{name}: a delta for block {index} while {open:?} is open"
                );
            }
            StreamEvent::BlockStop { index } => {
                assert_eq!(
                    open,
                    Some(*index),
                    "{name}: block {index} stops while {open:?} is open"
                );
                open = None;
            }
            _ => {}
        }
    }
}
