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
    Ort(onnxruntime::Sessions),
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
    use std::sync::{Arc, Mutex};
    use tract_onnx::prelude::Tensor;

    /// ONNX Runtime's library as this process loaded it: a process loads one, and builds one environment.
    struct Runtime {
        library: PathBuf,
        environment: Option<Environment>,
    }

    static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

    fn environment(library: &Path) -> Result<Environment, DetectorError> {
        // The same file by another path (a symlink, a relative name) is the same library.
        let canonical = std::fs::canonicalize(library).unwrap_or_else(|_| library.to_path_buf());
        let mut runtime = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*runtime {
            Some(loaded) if loaded.library != canonical => {
                return Err(DetectorError::Model(format!(
                    "detector.ort.library {}: this worker has loaded ONNX Runtime from {} already, and a process can load \
                     only one; give every camera connector of a worker the same library",
                    library.display(),
                    loaded.library.display()
                )))
            }
            Some(Runtime { environment: Some(environment), .. }) => return Ok(environment.clone()),
            _ => {}
        }
        // Loads the library the first time (a library that fails to load leaves nothing behind, so another path
        // may be tried); after that it only makes the environment's builder.
        let builder =
            ort::init_from(library).map_err(|e| DetectorError::Model(format!("cannot load ONNX Runtime ({}): {e}", library.display())))?;
        let loaded = runtime.get_or_insert(Runtime { library: canonical, environment: None });
        let environment = builder.with_name("connect-rs").build().map_err(|e| DetectorError::Model(format!("ONNX Runtime: {e}")))?;
        loaded.environment = Some(environment.clone());
        Ok(environment)
    }

    fn shape(dtype: &ort::value::ValueType) -> Vec<usize> {
        dtype.tensor_shape().map(|s| s.iter().map(|&d| d.max(0) as usize).collect()).unwrap_or_default()
    }

    /// Sessions of one model: a run takes an idle one (or makes one), so cameras sharing a detector infer side
    /// by side, as tract's plans do from `&self`.
    pub(in crate::detector) struct Sessions {
        environment: Environment,
        model: Arc<[u8]>,
        threads: usize,
        idle: Mutex<Vec<Session>>,
    }

    impl Sessions {
        fn open(&self) -> Result<Session, String> {
            Session::builder(&self.environment)
                .map_err(|e| e.to_string())?
                .with_intra_threads(self.threads)
                .map_err(|e| e.to_string())?
                .commit_from_memory(&self.model)
                .map_err(|e| e.to_string())
        }
    }

    pub(super) fn load(library: &Path, model: &[u8], what: &str, threads: usize) -> Result<Loaded, DetectorError> {
        let environment = environment(library)?;
        let sessions = Sessions { environment, model: Arc::from(model), threads, idle: Mutex::new(Vec::new()) };
        let session =
            sessions.open().map_err(|e| DetectorError::Model(format!("{what} is not an ONNX model ONNX Runtime can run: {e}")))?;
        let input = session.inputs().first().map(|i| shape(i.dtype())).unwrap_or_default();
        let outputs = session.outputs().iter().map(|o| shape(o.dtype())).collect();
        sessions.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(session);
        Ok(Loaded { engine: Engine::Ort(sessions), input, outputs })
    }

    pub(super) fn run<R>(sessions: &Sessions, input: Tensor, f: impl FnOnce(&[(Vec<usize>, &[f32])]) -> R) -> Result<R, DetectorError> {
        let failed = |e: String| DetectorError::Inference(format!("ONNX Runtime: {e}"));
        let idle = sessions.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let mut session = match idle {
            Some(session) => session,
            None => sessions.open().map_err(failed)?,
        };
        let result = run_on(&mut session, input, f).map_err(failed);
        sessions.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(session);
        result
    }

    fn run_on<R>(session: &mut Session, input: Tensor, f: impl FnOnce(&[(Vec<usize>, &[f32])]) -> R) -> Result<R, String> {
        let shape: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
        let values: Vec<f32> = input.to_plain_array_view::<f32>().map_err(|e| format!("{e:#}"))?.iter().copied().collect();
        let tensor = ort::value::Tensor::from_array((shape, values)).map_err(|e| e.to_string())?;
        let outputs = session.run(ort::inputs![tensor]).map_err(|e| e.to_string())?;
        let mut views = Vec::with_capacity(outputs.len());
        for i in 0..outputs.len() {
            let (shape, values) = outputs[i].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
            views.push((shape.iter().map(|&d| d.max(0) as usize).collect(), values));
        }
        Ok(f(&views))
    }
}
