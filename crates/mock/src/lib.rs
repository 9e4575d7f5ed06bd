//! # infergate-mock
//!
//! A mock LLM provider that speaks the real wire formats: OpenAI chat completions (streamed and
//! not, with `usage`, honouring `stream_options.include_usage`), embeddings, `/v1/models`, and
//! Anthropic messages (streamed and not). It answers any model name, can be slowed down
//! (latency, inter-token delay), can fail on demand (status codes with `Retry-After`,
//! connection reset, disconnect mid-stream, hang) and records every request it receives for
//! tests to assert on.
//!
//! ```
//! use infergate_mock::{Failure, MockProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mock = MockProvider::builder().reply("Hi there").start().await.unwrap();
//! mock.push_failure(Failure::status(503).retry_after("2"));
//! // The first request gets the 503, the next ones a normal answer.
//! println!("mock provider at {}", mock.url());
//! assert_eq!(mock.requests().len(), 0);
//! # }
//! ```
//!
//! Failures can also be asked for per request with the `x-mock-fail` header: a status code
//! (`503`), `reset`, `hang`, or `disconnect:N` (cut a stream after N chunks).

mod agent;
mod handlers;
mod server;
pub mod wire;

pub use server::{Failure, MockBuilder, MockProvider, RecordedRequest};
pub use wire::Wire;
