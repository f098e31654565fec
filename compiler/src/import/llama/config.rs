//! The Llama-family architecture as data: [`LlamaConfig`] from a Hugging Face
//! `config.json` ([`LlamaConfig::from_hf`]), its RoPE frequencies ([`inv_freq`]) and the
//! quantization of its linears ([`Quant`]). A field that changes the math in a way the
//! lowering does not follow is an error naming it.

use std::path::Path;

use lowbit_dialects::formats::{self, Format};
use serde_json::Value as Json;

use crate::import::{ImportError, ImportResult};

/// Rotary embedding frequency scaling (`rope_scaling`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Frequencies divided by `factor`.
    Linear {
        /// The divisor.
        factor: f64,
    },
    /// Llama 3's piecewise scaling.
    Llama3 {
        /// `factor`.
        factor: f64,
        /// `low_freq_factor`.
        low: f64,
        /// `high_freq_factor`.
        high: f64,
        /// `original_max_position_embeddings`.
        original: f64,
    },
}

/// The architecture, as far as the lowering cares.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// The architecture name (`LlamaForCausalLM`, ...), for messages and `inspect`.
    pub architecture: String,
    /// `hidden_size`.
    pub hidden: usize,
    /// `num_hidden_layers`.
    pub layers: usize,
    /// `num_attention_heads`.
    pub heads: usize,
    /// `num_key_value_heads`.
    pub kv_heads: usize,
    /// `head_dim`.
    pub head_dim: usize,
    /// `intermediate_size`.
    pub intermediate: usize,
    /// `vocab_size`.
    pub vocab: usize,
    /// `rms_norm_eps`.
    pub eps: f64,
    /// `rope_theta`.
    pub rope_theta: f64,
    /// `rope_scaling`.
    pub rope_scaling: RopeScaling,
    /// Per-frequency divisors of the RoPE frequencies (GGUF `rope_freqs.weight`).
    pub rope_freq_factors: Option<Vec<f64>>,
    /// `tie_word_embeddings`.
    pub tie_embeddings: bool,
    /// Biases on q/k/v.
    pub qkv_bias: bool,
    /// Bias on o_proj.
    pub o_bias: bool,
    /// Biases on the MLP.
    pub mlp_bias: bool,
    /// `max_position_embeddings`.
    pub max_positions: usize,
    /// The attention window, when the model has one.
    pub sliding_window: Option<usize>,
    /// The quantization of the decoder's linear layers.
    pub quant: Quant,
}

/// How a safetensors checkpoint's decoder linears are quantized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quant {
    /// Float weights.
    None,
    /// AutoAWQ GEMM int4.
    Awq {
        /// `group_size`.
        group: usize,
    },
    /// AutoGPTQ v1.
    Gptq {
        /// `bits` (4 or 8).
        bits: u32,
        /// `group_size` (`-1` is `None`: one group over all inputs).
        group: Option<usize>,
    },
}

impl Quant {
    /// The registry format of the quantized linears.
    pub fn format(self) -> Option<&'static Format> {
        let name = match self {
            Quant::None => return None,
            Quant::Awq { .. } => "awq_gemm_int4",
            Quant::Gptq { bits: 8, .. } => "gptq_int8",
            Quant::Gptq { .. } => "gptq_int4",
        };
        Some(formats::lookup(name).expect("AWQ and GPTQ formats are registered"))
    }
}

pub(crate) fn config_err(path: &Path, message: String) -> ImportError {
    ImportError::Config {
        path: path.to_path_buf(),
        message,
    }
}

/// The architectures [`LlamaConfig::from_hf`] accepts, with their `model_type`.
pub const ARCHITECTURES: &[(&str, &str)] = &[
    ("LlamaForCausalLM", "llama"),
    ("MistralForCausalLM", "mistral"),
    ("Qwen2ForCausalLM", "qwen2"),
];

/// Whether a parsed `config.json` names a Llama-family architecture.
pub fn is_llama_config(j: &Json) -> bool {
    let arch = j
        .get("architectures")
        .and_then(Json::as_array)
        .and_then(|a| a.first())
        .and_then(Json::as_str);
    let ty = j.get("model_type").and_then(Json::as_str);
    ARCHITECTURES
        .iter()
        .any(|(a, t)| arch == Some(a) || (arch.is_none() && ty == Some(t)))
}

impl LlamaConfig {
    /// Reads a Hugging Face `config.json` (already parsed; `path` is for messages).
    pub fn from_hf(path: &Path, j: &Json) -> ImportResult<LlamaConfig> {
        let err = |m: String| config_err(path, m);
        let archs: Vec<&str> = j
            .get("architectures")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let model_type = j.get("model_type").and_then(Json::as_str);
        let supported = ARCHITECTURES
            .iter()
            .map(|(a, _)| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let arch = match (archs.as_slice(), model_type) {
            ([a], _) => ARCHITECTURES.iter().find(|(n, _)| n == a).ok_or_else(|| {
                err(format!(
                    "architectures names \"{a}\", which lowbit cannot import (supported: {supported})"
                ))
            })?,
            ([], Some(t)) => ARCHITECTURES.iter().find(|(_, n)| *n == t).ok_or_else(|| {
                err(format!(
                    "model_type is \"{t}\", which lowbit cannot import (supported: {supported})"
                ))
            })?,
            ([], None) => return Err(err("has neither architectures nor model_type".into())),
            (many, _) => {
                return Err(err(format!(
                    "architectures names {} models; lowbit imports one",
                    many.len()
                )))
            }
        };
        if let Some(t) = model_type {
            if t != arch.1 {
                return Err(err(format!(
                    "model_type is \"{t}\" but architectures names {} (model_type \"{}\")",
                    arch.0, arch.1
                )));
            }
        }
        let size = |k: &str| -> ImportResult<usize> {
            j.get(k)
                .and_then(Json::as_u64)
                .filter(|&v| v > 0)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| err(format!("{k} is missing or not a positive integer")))
        };
        let opt_size = |k: &str| -> ImportResult<Option<usize>> {
            match j.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(_) => size(k).map(Some),
            }
        };
        let num = |k: &str, default: f64| -> ImportResult<f64> {
            match j.get(k) {
                None | Some(Json::Null) => Ok(default),
                Some(v) => v
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| err(format!("{k} is {v}, not a number"))),
            }
        };
        let flag = |k: &str, default: bool| -> ImportResult<bool> {
            match j.get(k) {
                None | Some(Json::Null) => Ok(default),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| err(format!("{k} is {v}, not a boolean"))),
            }
        };
        let act = j.get("hidden_act").and_then(Json::as_str).unwrap_or("silu");
        if act != "silu" {
            return Err(err(format!(
                "hidden_act is \"{act}\", which lowbit cannot import (supported: \"silu\")"
            )));
        }
        let hidden = size("hidden_size")?;
        let heads = size("num_attention_heads")?;
        let kv_heads = opt_size("num_key_value_heads")?.unwrap_or(heads);
        let head_dim = match opt_size("head_dim")? {
            Some(d) => d,
            None if hidden.is_multiple_of(heads) => hidden / heads,
            None => {
                return Err(err(format!(
                    "hidden_size {hidden} is not a multiple of num_attention_heads {heads} and head_dim is not given"
                )))
            }
        };
        if !heads.is_multiple_of(kv_heads) {
            return Err(err(format!(
                "num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
            )));
        }
        if head_dim % 2 != 0 {
            return Err(err(format!("head_dim {head_dim} is odd; RoPE needs pairs")));
        }
        let partial = num("partial_rotary_factor", 1.0)?;
        if partial != 1.0 {
            return Err(err(format!(
                "partial_rotary_factor is {partial}, which lowbit cannot import (only 1.0)"
            )));
        }
        let is_qwen = arch.1 == "qwen2";
        let attention_bias = flag("attention_bias", false)?;
        let sliding_window = match arch.1 {
            "mistral" => opt_size("sliding_window")?,
            "qwen2" if flag("use_sliding_window", false)? => {
                return Err(err(
                    "use_sliding_window is true, which lowbit cannot import (its layer-dependent window)"
                        .into(),
                ))
            }
            _ => None,
        };
        let rope_params = j.get("rope_scaling").filter(|v| !v.is_null()).or_else(|| {
            j.get("rope_parameters")
                .filter(|v| v.get("rope_type").and_then(Json::as_str) != Some("default"))
        });
        let rope_theta = match j.get("rope_theta") {
            Some(v) if !v.is_null() => num("rope_theta", 10000.0)?,
            _ => j
                .get("rope_parameters")
                .and_then(|p| p.get("rope_theta"))
                .and_then(Json::as_f64)
                .unwrap_or(10000.0),
        };
        let max_positions = size("max_position_embeddings")?;
        let cfg = LlamaConfig {
            architecture: arch.0.to_string(),
            hidden,
            layers: size("num_hidden_layers")?,
            heads,
            kv_heads,
            head_dim,
            intermediate: size("intermediate_size")?,
            vocab: size("vocab_size")?,
            eps: num("rms_norm_eps", 1e-6)?,
            rope_theta,
            rope_scaling: parse_rope_scaling(path, rope_params)?,
            rope_freq_factors: None,
            tie_embeddings: flag("tie_word_embeddings", false)?,
            qkv_bias: is_qwen || attention_bias,
            o_bias: attention_bias,
            mlp_bias: flag("mlp_bias", false)?,
            max_positions,
            sliding_window,
            quant: parse_quant(path, j.get("quantization_config"))?,
        };
        if cfg.rope_theta <= 0.0 {
            return Err(err(format!(
                "rope_theta is {}, not positive",
                cfg.rope_theta
            )));
        }
        Ok(cfg)
    }
}

fn parse_rope_scaling(path: &Path, v: Option<&Json>) -> ImportResult<RopeScaling> {
    let err = |m: String| config_err(path, m);
    let Some(v) = v else {
        return Ok(RopeScaling::None);
    };
    let ty = v
        .get("rope_type")
        .or_else(|| v.get("type"))
        .and_then(Json::as_str)
        .ok_or_else(|| err("rope_scaling has no rope_type".into()))?;
    let num = |k: &str| -> ImportResult<f64> {
        v.get(k)
            .and_then(Json::as_f64)
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| {
                err(format!(
                    "rope_scaling.{k} is missing or not a positive number"
                ))
            })
    };
    Ok(match ty {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: num("factor")?,
        },
        "llama3" => {
            let s = RopeScaling::Llama3 {
                factor: num("factor")?,
                low: num("low_freq_factor")?,
                high: num("high_freq_factor")?,
                original: num("original_max_position_embeddings")?,
            };
            if let RopeScaling::Llama3 { low, high, .. } = s {
                if high <= low {
                    return Err(err(format!(
                        "rope_scaling.high_freq_factor {high} is not above low_freq_factor {low}"
                    )));
                }
            }
            s
        }
        other => {
            return Err(err(format!(
            "rope_scaling type \"{other}\" is not supported (supported: default, linear, llama3)"
        )))
        }
    })
}

fn parse_quant(path: &Path, v: Option<&Json>) -> ImportResult<Quant> {
    let err = |m: String| config_err(path, m);
    let Some(q) = v.filter(|v| !v.is_null()) else {
        return Ok(Quant::None);
    };
    let method = q
        .get("quant_method")
        .and_then(Json::as_str)
        .ok_or_else(|| err("quantization_config has no quant_method".into()))?;
    let bits = q.get("bits").and_then(Json::as_u64);
    let group = q.get("group_size").and_then(Json::as_i64);
    match method {
        "awq" => {
            let version = q
                .get("version")
                .and_then(Json::as_str)
                .unwrap_or("gemm")
                .to_ascii_lowercase();
            if version != "gemm" {
                return Err(err(format!(
                    "quantization_config.version is \"{version}\"; lowbit imports AWQ \"gemm\" only"
                )));
            }
            if bits != Some(4) {
                return Err(err(format!(
                    "quantization_config.bits is {bits:?}; AWQ GEMM is 4-bit"
                )));
            }
            if q.get("zero_point").and_then(Json::as_bool) == Some(false) {
                return Err(err(
                    "quantization_config.zero_point is false; lowbit imports AWQ with zero points only"
                        .into(),
                ));
            }
            match group {
                Some(g) if g > 0 => Ok(Quant::Awq { group: g as usize }),
                _ => Err(err(format!(
                    "quantization_config.group_size is {group:?}; AWQ needs a positive group size"
                ))),
            }
        }
        "gptq" => {
            let bits = match bits {
                Some(b @ (4 | 8)) => b as u32,
                other => {
                    return Err(err(format!(
                    "quantization_config.bits is {other:?}; lowbit imports GPTQ with 4 or 8 bits"
                )))
                }
            };
            let fmt = q
                .get("checkpoint_format")
                .and_then(Json::as_str)
                .unwrap_or("gptq");
            if fmt != "gptq" {
                return Err(err(format!(
                    "quantization_config.checkpoint_format is \"{fmt}\"; lowbit imports \"gptq\" (v1 zero points) only"
                )));
            }
            let group = match group {
                Some(-1) => None,
                Some(g) if g > 0 => Some(g as usize),
                other => {
                    return Err(err(format!(
                        "quantization_config.group_size is {other:?}, not a positive size or -1"
                    )))
                }
            };
            Ok(Quant::Gptq { bits, group })
        }
        other => Err(err(format!(
            "quantization_config.quant_method \"{other}\" is not supported (supported: awq, gptq)"
        ))),
    }
}

/// The RoPE inverse frequencies `[D/2]` in f32, as Hugging Face computes them.
pub fn inv_freq(cfg: &LlamaConfig) -> Vec<f32> {
    let d = cfg.head_dim;
    let base: Vec<f32> = (0..d / 2)
        .map(|i| {
            let e = (2 * i) as f32 / d as f32;
            1.0 / (cfg.rope_theta as f32).powf(e)
        })
        .collect();
    let scaled: Vec<f32> = match cfg.rope_scaling {
        RopeScaling::None => base,
        RopeScaling::Linear { factor } => base.iter().map(|f| f / factor as f32).collect(),
        RopeScaling::Llama3 {
            factor,
            low,
            high,
            original,
        } => base
            .iter()
            .map(|&f| {
                let wavelen = 2.0 * std::f64::consts::PI / f as f64;
                let low_wl = original / low;
                let high_wl = original / high;
                if wavelen < high_wl {
                    f
                } else if wavelen > low_wl {
                    (f as f64 / factor) as f32
                } else {
                    let smooth = (original / wavelen - low) / (high - low);
                    ((1.0 - smooth) * f as f64 / factor + smooth * f as f64) as f32
                }
            })
            .collect(),
    };
    match &cfg.rope_freq_factors {
        Some(ff) => scaled
            .iter()
            .zip(ff)
            .map(|(&f, &k)| (f as f64 / k) as f32)
            .collect(),
        None => scaled,
    }
}
