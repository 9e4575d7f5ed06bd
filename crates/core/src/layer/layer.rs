use tower::Layer;

use super::PipelineService;
use crate::pipeline::{Pipeline, Processor};

/// A tower [`Layer`] that runs a [`Pipeline`] around the inner service. Holds configuration
/// only (the pipeline, behind an `Arc`): cheap to clone.
#[derive(Debug, Clone)]
pub struct PipelineLayer {
    pipeline: Pipeline,
}

impl PipelineLayer {
    /// A layer for `pipeline`.
    pub fn new(pipeline: Pipeline) -> Self {
        Self { pipeline }
    }

    /// A layer that runs one processor: how each building block becomes a layer of its own.
    pub fn processor(processor: impl Processor) -> Self {
        Self::new(Pipeline::builder().processor(processor).build())
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
}

impl<S> Layer<S> for PipelineLayer {
    type Service = PipelineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PipelineService::new(inner, self.pipeline.clone())
    }
}
