//! What the telemetry benchmarks and the `observe_cost` example share: the request and answer,
//! a processor that reads every answer, and an OTLP/HTTP collector to run in a child process.

use std::convert::Infallible;

use async_trait::async_trait;
use bytes::Bytes;
use infergate_core::pipeline::Phases;
use infergate_core::{Decision, Processor, ProcessorError, ResponseBody, ResponseContext};

/// A processor that reads every answer (as a guardrail, a cache or a budget does).
pub(crate) struct ReadsAnswers;

#[async_trait]
impl Processor for ReadsAnswers {
    fn name(&self) -> &str {
        "reader"
    }
    fn phases(&self) -> Phases {
        Phases::REQUEST | Phases::RESPONSE | Phases::RESPONSE_BODY
    }
    async fn on_response_body(
        &self,
        _cx: &mut ResponseContext<'_>,
        body: &mut ResponseBody,
    ) -> Result<Decision, ProcessorError> {
        std::hint::black_box(body.json());
        Ok(Decision::Continue)
    }
}

/// A processor in every phase that does nothing: what any processor where telemetry sits
/// costs the pipeline.
pub(crate) struct Noop;

#[async_trait]
impl Processor for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn phases(&self) -> Phases {
        Phases::ALL
    }
}

/// The request.
pub(crate) const BODY: &str = r#"{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}"#;
/// Its answer.
pub(crate) const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":2,"total_tokens":26}}"#;

/// A collector in a child process: this binary started again with `env` set, which must call
/// [`sink`] and print its address first.
pub(crate) struct Collector {
    child: std::process::Child,
    /// Where it listens.
    pub(crate) addr: String,
}

impl Collector {
    /// Starts it.
    pub(crate) fn start(env: &str) -> std::io::Result<Self> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .env(env, "1")
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let out = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        std::io::BufReader::new(out).read_line(&mut line)?;
        Ok(Self {
            child,
            addr: line.trim().to_owned(),
        })
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The collector: reads each export whole and answers 200, for ever.
pub(crate) fn sink() -> std::io::Result<()> {
    use http_body_util::BodyExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let svc = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
            let body = req.into_body().collect().await.map(|b| b.to_bytes().len());
            std::hint::black_box(body.ok());
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(Bytes::new())))
        });
        let addr = infergate_testkit::serve(svc).await;
        println!("{addr}");
        std::future::pending::<()>().await;
    });
    Ok(())
}
