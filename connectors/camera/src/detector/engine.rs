//! What runs the model: tract (pure Rust, always built), or ONNX Runtime through the optional `ort` feature,
//! which loads `libonnxruntime` at run time (`detector.engine=ort`, `detector.ort.library`), about three times
//! faster on the shipped models. Both take the same prepared tensor and give the same outputs (shape, values),
//! so the decoders do not know which ran.

use super::DetectorError;
use std::path::PathBuf;
use std::sync::Arc;
use tract_onnx::prelude::*;

/// Which engine runs the model (`detector.engine`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EngineKind {
    #[default]
    Tract,
    /// ONNX Runtime, loaded from this library file (the `ort` feature).
    Ort { library: PathBuf },
}

impl EngineKind {
    /// Whether this build has the ONNX Runtime engine.
    pub const ORT_BUILT: bool = cfg!(feature = "ort");
}

/// A loaded model, with its input and output shapes for the detector's checks.
pub(super) struct Loaded {
    pub engine: Engine,
    pub input: Vec<usize>,
    pub outputs: Vec<Vec<usize>>,
}

pub(super) enum Engine {
    Tract {
        plan: Arc<TypedRunnableModel>,
        executor: Option<tract_linalg::multithread::Executor>,
    },
    #[cfg(feature = "ort")]
    Ort(std::sync::Mutex<ort::session::Session>),
}

fn concrete_shape(fact: &TypedFact) -> Vec<usize> {
    fact.shape.as_concrete().map(<[usize]>::to_vec).unwrap_or_default()
}

impl Engine {
    /// Load `model` (ONNX bytes; `what` names it in errors) with `threads` threads for one inference.
    pub fn load(kind: &EngineKind, model: &[u8], what: &str, threads: usize) -> Result<Loaded, DetectorError> {
        match kind {
            EngineKind::Tract => {
                let model_error = |e: TractError| DetectorError::Model(format!("{what} is not an ONNX model tract can run: {e:#}"));
                let model =
                    tract_onnx::onnx().model_for_read(&mut { model }).map_err(model_error)?.into_optimized().map_err(model_error)?;
                let input = model.input_fact(0).map(concrete_shape).unwrap_or_default();
                let outputs = (0..model.outputs.len()).map(|i| model.output_fact(i).map(concrete_shape).unwrap_or_default()).collect();
                let plan = model.into_runnable().map_err(|e| DetectorError::Model(format!("{e:#}")))?;
                let executor = (threads > 1).then(|| tract_linalg::multithread::Executor::multithread(threads));
                Ok(Loaded { engine: Engine::Tract { plan, executor }, input, outputs })
            }
            #[cfg(feature = "ort")]
            EngineKind::Ort { library } => onnxruntime::load(library, model, what, threads),
            #[cfg(not(feature = "ort"))]
            EngineKind::Ort { .. } => {
                Err(DetectorError::Model("detector.engine=ort: this build has no ONNX Runtime engine (build with `--features ort`)".into()))
            }
        }
    }

    /// Run the model on `input`; `f` gets the outputs, in the model's order, as (shape, values).
    pub fn run<R>(&self, input: Tensor, f: impl FnOnce(&[(Vec<usize>, &[f32])]) -> R) -> Result<R, DetectorError> {
        match self {
            Engine::Tract { plan, executor } => {
                let run = || plan.run(tvec!(input.into()));
                let outputs = match executor {
                    Some(executor) => tract_linalg::multithread::multithread_tract_scope(executor.clone(), run),
                    None => run(),
                }
                .map_err(|e| DetectorError::Inference(format!("{e:#}")))?;
                let views: Vec<(Vec<usize>, &[f32])> = outputs
                    .iter()
                    .map(|t| {
                        let view = t.to_plain_array_view::<f32>().map_err(|e| format!("{e:#}"))?;
                        Ok((t.shape().to_vec(), view.to_slice().ok_or("an output that is not contiguous")?))
                    })
                    .collect::<Result<_, String>>()
                    .map_err(DetectorError::Inference)?;
                Ok(f(&views))
            }
            #[cfg(feature = "ort")]
            Engine::Ort(session) => onnxruntime::run(session, input, f),
        }
    }
}

#[cfg(feature = "ort")]
mod onnxruntime {
    use super::{DetectorError, Engine, Loaded};
    use ort::environment::Environment;
    use ort::session::Session;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use tract_onnx::prelude::Tensor;

    /// ONNX Runtime allows one environment a process, and loads its library once: the first detector that
    /// loads it successfully decides which library every other one uses.
    static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

    fn environment(library: &Path) -> Result<Environment, DetectorError> {
        let mut loaded = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*loaded {
            Some((path, environment)) if path == library => return Ok(environment.clone()),
            Some((path, _)) => {
                return Err(DetectorError::Model(format!(
                    "detector.ort.library {}: this worker has loaded ONNX Runtime from {} already, and a process can load \
                     only one; give every camera connector of a worker the same library",
                    library.display(),
                    path.display()
                )))
            }
            None => {}
        }
        let environment = ort::init_from(library)
            .map_err(|e| DetectorError::Model(format!("cannot load ONNX Runtime ({}): {e}", library.display())))?
            .with_name("connect-rs")
            .build()
            .map_err(|e| DetectorError::Model(format!("ONNX Runtime: {e}")))?;
        *loaded = Some((library.to_path_buf(), environment.clone()));
        Ok(environment)
    }

    fn shape(dtype: &ort::value::ValueType) -> Vec<usize> {
        dtype.tensor_shape().map(|s| s.iter().map(|&d| d.max(0) as usize).collect()).unwrap_or_default()
    }

    pub(super) fn load(library: &Path, model: &[u8], what: &str, threads: usize) -> Result<Loaded, DetectorError> {
        let environment = environment(library)?;
        let model_error = |e: String| DetectorError::Model(format!("{what} is not an ONNX model ONNX Runtime can run: {e}"));
        let session = Session::builder(&environment)
            .map_err(|e| model_error(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| model_error(e.to_string()))?
            .commit_from_memory(model)
            .map_err(|e| model_error(e.to_string()))?;
        let input = session.inputs().first().map(|i| shape(i.dtype())).unwrap_or_default();
        let outputs = session.outputs().iter().map(|o| shape(o.dtype())).collect();
        Ok(Loaded { engine: Engine::Ort(Mutex::new(session)), input, outputs })
    }

    pub(super) fn run<R>(
        session: &Mutex<Session>,
        input: Tensor,
        f: impl FnOnce(&[(Vec<usize>, &[f32])]) -> R,
    ) -> Result<R, DetectorError> {
        let failed = |e: String| DetectorError::Inference(format!("ONNX Runtime: {e}"));
        let shape: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
        let values: Vec<f32> = input.to_plain_array_view::<f32>().map_err(|e| failed(format!("{e:#}")))?.iter().copied().collect();
        let tensor = ort::value::Tensor::from_array((shape, values)).map_err(|e| failed(e.to_string()))?;
        // Runs take the session mutably; one inference at a time per detector, as with tract.
        let mut session = session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session.run(ort::inputs![tensor]).map_err(|e| failed(e.to_string()))?;
        let mut views = Vec::with_capacity(outputs.len());
        for i in 0..outputs.len() {
            let (shape, values) = outputs[i].try_extract_tensor::<f32>().map_err(|e| failed(e.to_string()))?;
            views.push((shape.iter().map(|&d| d.max(0) as usize).collect(), values));
        }
        Ok(f(&views))
    }
}
