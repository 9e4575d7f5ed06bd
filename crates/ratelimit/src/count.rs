//! Token counting, from [`infergate_tokens`] (re-exported here for compatibility): the model's
//! encoding, the chat framing and the process-wide memo live there, shared with the other
//! blocks that count tokens.

pub use infergate_tokens::{Encoding, SHARED_MEMO_CAPACITY, TokenCounter, UnknownEncoding};
