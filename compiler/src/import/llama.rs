//! Llama-family causal language models (`LlamaForCausalLM`, `MistralForCausalLM`,
//! `Qwen2ForCausalLM`) to lowbit IR, from a Hugging Face checkpoint directory or, through
//! [`super::gguf`], a GGUF file.
//!
//! [`import_llama_dir`] reads `config.json` ([`LlamaConfig::from_hf`]) and the weights, and
//! builds one function for the chosen [`Entry`]:
//!
//! ```text
//! prefill: (input_ids i64[B,S], attention_mask i64[B,S])
//!     -> (logits f32[B,S,V], present.N.key f32[B,Hkv,S,D], present.N.value ...)
//! decode:  (input_ids i64[B,S], attention_mask i64[B,T+S],
//!           past_key_values.N.key f32[B,Hkv,T,D], past_key_values.N.value ...)
//!     -> (logits f32[B,S,V], present.N.key f32[B,Hkv,T+S,D], present.N.value ...)
//! ```
//!
//! The math is Hugging Face's: token embedding; per layer RMSNorm, q/k/v projections
//! (Qwen2 and `attention_bias` add biases), rotate-half RoPE at positions `T..T+S` with
//! `cos`/`sin` tables computed here (f32, as Hugging Face computes them) from `rope_theta`
//! and `rope_scaling` (none, `linear`, `llama3`), causal `attn.sdpa` with GQA and the
//! additive padding mask, the output projection, residual, RMSNorm, the SwiGLU MLP
//! `down(silu(gate(x)) · up(x))`, residual; the final norm and `lm_head` (the embedding
//! when `tie_word_embeddings`). Positions are always `T..T+S` (the `position_ids` a plain
//! forward call uses); Mistral's sliding window is accepted only when `T + S` fits in it,
//! where it changes nothing.
//!
//! Quantized linears stay low-bit: AWQ (`quant_method = "awq"`, GEMM, 4 bits) and GPTQ
//! (`"gptq"`, 4 or 8 bits, `desc_act`/`g_idx`, v1 zero points) weights are unpacked by the
//! storage-format registry ([`lowbit_dialects::formats`]) into `ui4`/`ui8` code and zero-point
//! tensors `[in, out]` / `[groups, out]` (a relayout of the same bits, not a dequantization),
//! and the IR dequantizes them with `lowbit.dequantize` (per block of `group_size` input
//! rows, or through `graph.gather` of the scales and zeros by `g_idx` for act-order)
//! before a `graph.matmul`. The IR names of these derived tensors are the checkpoint key
//! followed by `:codes` or `:zero_points`; [`ModelWeights`] produces them.
//!
//! An unknown architecture, or a config field that changes the math in a way not lowered
//! here, is an error naming the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lowbit_dialects::dialect::Opcode;
use lowbit_dialects::formats::{Array, Format, Zero};
use lowbit_dialects::interp::{Tensor, Weights};
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, Elem, Func, Loc, Module, TensorType, Value};
use lowbit_dialects::{attn, graph, lowbit};
use serde_json::Value as Json;

mod config;

use config::config_err;
pub use config::{inv_freq, is_llama_config, LlamaConfig, Quant, RopeScaling, ARCHITECTURES};

use super::gguf::{GgufFile, GgufPart};
use super::{Dtype, ImportError, ImportResult, WeightStore};

/// Which function to build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Entry {
    /// `S` tokens with an empty cache.
    #[default]
    Prefill,
    /// `S` tokens (usually 1) after a cache of `T = past` tokens.
    Decode,
}

impl Entry {
    /// `prefill` / `decode`.
    pub fn name(self) -> &'static str {
        match self {
            Entry::Prefill => "prefill",
            Entry::Decode => "decode",
        }
    }
}

/// Static sizes of the imported function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LlamaDims {
    /// `B`.
    pub batch: usize,
    /// `S`: new tokens.
    pub sequence: usize,
    /// `T`: cached tokens (decode only).
    pub past: usize,
}

impl Default for LlamaDims {
    fn default() -> LlamaDims {
        LlamaDims {
            batch: 1,
            sequence: 128,
            past: 0,
        }
    }
}

/// How one weight is stored, with the IR names of its parts.
#[derive(Clone, Debug)]
pub enum WeightForm {
    /// A float tensor; linears are `[out, in]`.
    Float {
        /// IR (and checkpoint) name.
        name: String,
        /// Its stored type.
        ty: TensorType,
    },
    /// AWQ/GPTQ: codes `[in, out]`, scales and zero points `[groups, out]`.
    Grouped {
        /// `<qweight>:codes`.
        codes: (String, TensorType),
        /// `<scales>` (f16).
        scales: (String, TensorType),
        /// `<qzeros>:zero_points`.
        zeros: (String, TensorType),
        /// `<g_idx>` when it is not the identity grouping.
        g_idx: Option<(String, TensorType)>,
        /// Input rows per group.
        group: usize,
    },
    /// A GGUF block format, split into its fields (see [`super::gguf`]); `[rows, cols]`
    /// as PyTorch orders it (a linear is `[out, in]`).
    Block {
        /// The format.
        format: &'static Format,
        /// The GGUF tensor name; parts are `<name>:codes`, `:scale`, `:min`, `:sub_scale`,
        /// `:sub_min`.
        name: String,
        /// Rows.
        rows: usize,
        /// Columns (blocks run along them).
        cols: usize,
    },
}

/// A derived tensor's recipe.
#[derive(Clone, Debug)]
pub(crate) enum Derived {
    /// AWQ/GPTQ codes or zero points unpacked by the registry; zero points get the format's
    /// offset (mod 2^bits).
    Unpacked {
        key: String,
        format: &'static Format,
        array: Array,
        rows: usize,
        cols: usize,
        elem: Elem,
    },
    /// A field of a GGUF block tensor.
    Gguf(GgufPart),
}

/// Where the weights of an imported model come from.
#[derive(Debug)]
pub enum Source {
    /// A safetensors checkpoint.
    Safetensors(WeightStore),
    /// A GGUF file.
    Gguf(GgufFile),
}

/// The weights an imported model's `graph.weight` ops name: checkpoint tensors as they are,
/// and tensors derived from them by a relayout (unpacked codes and zero points, GGUF block
/// fields).
#[derive(Debug)]
pub struct ModelWeights {
    /// The checkpoint.
    pub source: Source,
    derived: BTreeMap<String, Derived>,
}

impl ModelWeights {
    pub(crate) fn new(source: Source, derived: BTreeMap<String, Derived>) -> ModelWeights {
        ModelWeights { source, derived }
    }

    /// Whether some weight is not a plain checkpoint tensor.
    pub fn has_derived(&self) -> bool {
        !self.derived.is_empty()
    }

    /// The files the weights come from.
    pub fn files(&self) -> Vec<PathBuf> {
        match &self.source {
            Source::Safetensors(s) => s.files().iter().map(|f| f.path().to_path_buf()).collect(),
            Source::Gguf(g) => vec![g.path().to_path_buf()],
        }
    }

    /// The tensor the IR calls `name`.
    pub fn tensor(&self, name: &str) -> ImportResult<Tensor> {
        match (self.derived.get(name), &self.source) {
            (
                Some(Derived::Unpacked {
                    key,
                    format,
                    array,
                    rows,
                    cols,
                    elem,
                }),
                Source::Safetensors(store),
            ) => {
                let e = store.entry(key).ok_or_else(|| ImportError::Weight {
                    name: key.clone(),
                    message: "is not in the checkpoint".into(),
                })?;
                let file = store
                    .files()
                    .iter()
                    .find(|f| f.entries().get(key) == Some(e))
                    .expect("the store's entries come from its files");
                let raw = format
                    .unpack_matrix(*array, *rows, *cols, file.bytes(e))
                    .map_err(|m| ImportError::Weight {
                        name: key.clone(),
                        message: m.to_string(),
                    })?;
                let bits = if *elem == Elem::UI8 { 8 } else { 4 };
                let offset = match (array, format.zero) {
                    (Array::Zeros, Zero::Tensor { offset, .. }) => offset,
                    _ => 0,
                };
                let data = raw
                    .iter()
                    .map(|&r| (i64::from(r) + offset).rem_euclid(1 << bits) as f64)
                    .collect();
                Ok(Tensor::new(
                    TensorType::new([*rows as i64, *cols as i64], *elem),
                    data,
                ))
            }
            (Some(Derived::Gguf(part)), Source::Gguf(g)) => g.part_tensor(part),
            (None, Source::Safetensors(store)) => store.tensor(name),
            (None, Source::Gguf(g)) => g.tensor(name),
            (Some(_), _) => Err(ImportError::Weight {
                name: name.to_string(),
                message: "is derived from a checkpoint of another kind".into(),
            }),
        }
    }

    /// Loads every weight `f` refers to through `graph.weight`.
    pub fn weights_for(&self, f: &Func) -> ImportResult<Weights> {
        let mut out = Weights::new();
        for &op in &f.body {
            let d = &f.ops[op];
            if d.opcode != Opcode::Graph(graph::Op::Weight) {
                continue;
            }
            if let Some(name) = d.attrs.str("name") {
                if !out.contains_key(name) {
                    out.insert(name.to_string(), self.tensor(name)?);
                }
            }
        }
        Ok(out)
    }
}

/// An imported Llama-family model.
#[derive(Debug)]
pub struct LlamaImport {
    /// One function, named after the entry.
    pub module: Module,
    /// Hugging Face names of the parameters, in order.
    pub inputs: Vec<String>,
    /// Hugging Face names of the results, in order.
    pub outputs: Vec<String>,
    /// The weights the function names.
    pub weights: ModelWeights,
    /// The configuration it was built from.
    pub config: LlamaConfig,
    /// Each logical weight (by Hugging Face name without `.weight`) and its form.
    pub forms: BTreeMap<String, WeightForm>,
}

impl LlamaImport {
    /// A function `@dequantize() -> f32` returning the weight `module` (a Hugging Face name
    /// such as `model.layers.0.self_attn.q_proj`) as the model's IR computes it: `[in, out]`
    /// for AWQ/GPTQ, `[rows, cols]` otherwise.
    pub fn dequantize_func(&self, module: &str) -> ImportResult<Func> {
        let form = self.forms.get(module).ok_or_else(|| ImportError::Weight {
            name: module.to_string(),
            message: "is not a weight of this model".into(),
        })?;
        let mut b = Builder::new(Func::new("dequantize", &[]));
        let w = b.materialize(form, module);
        b.f.rets = vec![w];
        Ok(b.f)
    }
}

/// Imports a Llama-family checkpoint directory.
pub fn import_llama_dir(
    dir: impl AsRef<Path>,
    entry: Entry,
    dims: LlamaDims,
) -> ImportResult<LlamaImport> {
    let dir = dir.as_ref();
    let config_path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| ImportError::io(&config_path, &e))?;
    let j: Json = serde_json::from_str(&text)
        .map_err(|e| config_err(&config_path, format!("is not valid JSON ({e})")))?;
    let cfg = LlamaConfig::from_hf(&config_path, &j)?;
    let store = WeightStore::open(dir)?;
    let mut set = SafetensorsSet {
        store: &store,
        quant: cfg.quant,
        derived: BTreeMap::new(),
    };
    let (module, inputs, outputs, forms) = build(
        &cfg,
        &mut set,
        entry,
        dims,
        &dir.display().to_string(),
        &config_path,
    )?;
    let derived = set.derived;
    Ok(LlamaImport {
        module,
        inputs,
        outputs,
        weights: ModelWeights {
            source: Source::Safetensors(store),
            derived,
        },
        config: cfg,
        forms,
    })
}

/// The weights of a safetensors checkpoint, under Hugging Face names.
struct SafetensorsSet<'a> {
    store: &'a WeightStore,
    quant: Quant,
    derived: BTreeMap<String, Derived>,
}

fn weight_err(name: &str, message: String) -> ImportError {
    ImportError::Weight {
        name: name.to_string(),
        message,
    }
}

impl SafetensorsSet<'_> {
    fn entry(&self, name: &str) -> ImportResult<&super::Entry> {
        self.store
            .entry(name)
            .ok_or_else(|| weight_err(name, "is not in the checkpoint".into()))
    }

    fn float(&self, name: &str, shape: &[usize]) -> ImportResult<WeightForm> {
        let e = self.entry(name)?;
        if e.shape != shape {
            return Err(weight_err(
                name,
                format!("has shape {:?}, expected {shape:?}", e.shape),
            ));
        }
        if !matches!(e.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64) {
            return Err(weight_err(
                name,
                format!("has dtype {:?}, expected a float type", e.dtype),
            ));
        }
        Ok(WeightForm::Float {
            name: name.to_string(),
            ty: e.tensor_type(),
        })
    }

    fn check(&self, name: &str, dtype: Dtype, shape: &[usize]) -> ImportResult<()> {
        let e = self.entry(name)?;
        if e.dtype != dtype || e.shape != shape {
            return Err(weight_err(
                name,
                format!(
                    "is {:?} {:?}, expected {dtype:?} {shape:?} for {}",
                    e.dtype,
                    e.shape,
                    match self.quant {
                        Quant::Awq { .. } => "AWQ GEMM",
                        _ => "GPTQ",
                    }
                ),
            ));
        }
        Ok(())
    }

    /// An AWQ/GPTQ linear `module` with `[out, in]` = `shape`.
    fn grouped(&mut self, module: &str, shape: &[usize]) -> ImportResult<WeightForm> {
        let format = self.quant.format().expect("quantized");
        let (n_out, n_in) = (shape[0], shape[1]);
        let (bits, group) = match self.quant {
            Quant::Awq { group } => (4usize, group),
            Quant::Gptq { bits, group } => (bits as usize, group.unwrap_or(n_in)),
            Quant::None => unreachable!("grouped is for quantized checkpoints"),
        };
        let per_word = 32 / bits;
        let groups = n_in.div_ceil(group);
        let qw = format!("{module}.qweight");
        let qz = format!("{module}.qzeros");
        let sc = format!("{module}.scales");
        let is_awq = matches!(self.quant, Quant::Awq { .. });
        let divisible = if is_awq {
            n_out % per_word == 0 && n_in % group == 0
        } else {
            n_in % per_word == 0 && n_out % per_word == 0
        };
        if !divisible {
            return Err(weight_err(
                &qw,
                format!(
                    "a [{n_out}, {n_in}] linear cannot be packed {per_word} values per int32 with group size {group}"
                ),
            ));
        }
        let qw_shape = if is_awq {
            [n_in, n_out / per_word]
        } else {
            [n_in / per_word, n_out]
        };
        self.check(&qw, Dtype::I32, &qw_shape)?;
        self.check(&qz, Dtype::I32, &[groups, n_out / per_word])?;
        self.check(&sc, Dtype::F16, &[groups, n_out])?;
        let elem = if bits == 8 { Elem::UI8 } else { Elem::UI4 };
        let codes = format!("{qw}:codes");
        let zeros = format!("{qz}:zero_points");
        self.derived.insert(
            codes.clone(),
            Derived::Unpacked {
                key: qw,
                format,
                array: Array::Data,
                rows: n_in,
                cols: n_out,
                elem,
            },
        );
        self.derived.insert(
            zeros.clone(),
            Derived::Unpacked {
                key: qz,
                format,
                array: Array::Zeros,
                rows: groups,
                cols: n_out,
                elem,
            },
        );
        let gi = format!("{module}.g_idx");
        let g_idx = match self.store.entry(&gi) {
            Some(_) if is_awq => None,
            None => None,
            Some(_) => {
                self.check(&gi, Dtype::I32, &[n_in])?;
                let t = self.store.tensor(&gi)?;
                let identity = t
                    .data
                    .iter()
                    .enumerate()
                    .all(|(i, &g)| g == (i / group) as f64);
                if let Some((i, &g)) = t
                    .data
                    .iter()
                    .enumerate()
                    .find(|(_, &g)| !(g >= 0.0 && g < groups as f64))
                {
                    return Err(weight_err(
                        &gi,
                        format!("entry {i} is {g}, outside the {groups} groups"),
                    ));
                }
                (!identity).then(|| (gi, TensorType::new([n_in as i64], Elem::I32)))
            }
        };
        let gshape = [groups as i64, n_out as i64];
        Ok(WeightForm::Grouped {
            codes: (codes, TensorType::new([n_in as i64, n_out as i64], elem)),
            scales: (sc, TensorType::new(gshape, Elem::F16)),
            zeros: (zeros, TensorType::new(gshape, elem)),
            g_idx,
            group,
        })
    }
}

/// Decoder linears that quantized checkpoints store low-bit.
fn is_decoder_linear(module: &str) -> bool {
    module.starts_with("model.layers.")
        && (module.contains(".self_attn.") || module.contains(".mlp."))
        && !module.ends_with("norm")
}

/// The weights a builder reads, under Hugging Face module names; records the derived
/// tensors it hands out.
pub(crate) trait Weighing {
    /// The form of weight `module` with logical shape `shape`; `linear` says it is a
    /// decoder linear (which a quantized checkpoint may store low-bit).
    fn weigh(&mut self, module: &str, shape: &[usize], linear: bool) -> ImportResult<WeightForm>;
    /// Whether the checkpoint has the weight `module`.
    fn present(&self, module: &str) -> bool;
    /// The form of the bias `[n]` of `module`.
    fn bias(&mut self, module: &str, n: usize) -> ImportResult<WeightForm>;
    /// Where a weight of `module` came from, for locations.
    fn loc(&self, module: &str) -> String;
}

impl Weighing for SafetensorsSet<'_> {
    fn weigh(&mut self, module: &str, shape: &[usize], linear: bool) -> ImportResult<WeightForm> {
        let quantized = linear
            && self.quant != Quant::None
            && is_decoder_linear(module)
            && self.store.entry(&format!("{module}.qweight")).is_some();
        if quantized {
            self.grouped(module, shape)
        } else {
            self.float(&format!("{module}.weight"), shape)
        }
    }

    fn present(&self, module: &str) -> bool {
        self.store.entry(&format!("{module}.weight")).is_some()
            || self.store.entry(&format!("{module}.qweight")).is_some()
    }

    fn bias(&mut self, module: &str, n: usize) -> ImportResult<WeightForm> {
        self.float(&format!("{module}.bias"), &[n])
    }

    fn loc(&self, module: &str) -> String {
        module.to_string()
    }
}

/// The function signature's names, and the weight forms, built by [`build`].
pub(crate) type Built = (
    Module,
    Vec<String>,
    Vec<String>,
    BTreeMap<String, WeightForm>,
);

/// Builds the function for `entry` over the weights `w`.
pub(crate) fn build(
    cfg: &LlamaConfig,
    w: &mut dyn Weighing,
    entry: Entry,
    dims: LlamaDims,
    origin: &str,
    config_path: &Path,
) -> ImportResult<Built> {
    let err = |m: String| config_err(config_path, m);
    if dims.batch == 0 || dims.sequence == 0 {
        return Err(err("batch and sequence must be at least 1".into()));
    }
    let past = match entry {
        Entry::Prefill if dims.past != 0 => {
            return Err(err(format!(
                "past={} applies to the decode entry only",
                dims.past
            )))
        }
        Entry::Prefill => 0,
        Entry::Decode if dims.past == 0 => {
            return Err(err(
                "the decode entry needs a cache: set past=T with T >= 1".into(),
            ))
        }
        Entry::Decode => dims.past,
    };
    let total = past + dims.sequence;
    if total > cfg.max_positions {
        return Err(err(format!(
            "past + sequence = {total} exceeds max_position_embeddings {}",
            cfg.max_positions
        )));
    }
    if let Some(win) = cfg.sliding_window {
        if total > win {
            return Err(err(format!(
                "sliding_window {win} is shorter than past + sequence = {total}, which lowbit cannot import (the window would change attention)"
            )));
        }
    }
    let (b, s, t) = (dims.batch as i64, dims.sequence as i64, total as i64);
    let (hkv, d) = (cfg.kv_heads as i64, cfg.head_dim as i64);
    let ids = TensorType::new([b, s], Elem::I64);
    let mut params = vec![ids, TensorType::new([b, t], Elem::I64)];
    let mut inputs = vec!["input_ids".to_string(), "attention_mask".to_string()];
    if entry == Entry::Decode {
        for l in 0..cfg.layers {
            for kv in ["key", "value"] {
                params.push(TensorType::new([b, hkv, past as i64, d], Elem::F32));
                inputs.push(format!("past_key_values.{l}.{kv}"));
            }
        }
    }
    let mut bld = Builder::new(Func::new(entry.name(), &params));
    bld.f.loc = Loc::name(origin.to_string());
    let mut forms = BTreeMap::new();
    let mut lw = LayerWeights {
        w,
        forms: &mut forms,
    };
    let ids = bld.f.params[0];
    let mask = bld.f.params[1];
    let h = cfg.hidden;
    let embed_form = lw.get("model.embed_tokens", &[cfg.vocab, h], false)?;
    let table = bld.materialize(&embed_form, &lw.w.loc("model.embed_tokens"));
    let mut x = bld.op(
        graph::Op::Gather,
        vec![table, ids],
        Attrs::new().with("axis", Attr::Int(0)),
        TensorType::new([b, s, h as i64], Elem::F32),
        &lw.w.loc("model.embed_tokens"),
    );
    let add_mask = bld.op(
        graph::Op::PaddingMask,
        vec![mask],
        Attrs::new(),
        TensorType::new([b, 1, 1, t], Elem::F32),
        "attention_mask",
    );
    let (cos, sin) = bld.rope_tables(cfg, past, dims.sequence);
    let mut rets = vec![];
    let mut presents = vec![];
    for l in 0..cfg.layers {
        let cache =
            (entry == Entry::Decode).then(|| (bld.f.params[2 + 2 * l], bld.f.params[3 + 2 * l]));
        let (y, k, v) = bld.layer(cfg, &mut lw, dims, l, x, add_mask, (cos, sin), cache)?;
        x = y;
        presents.push(k);
        presents.push(v);
    }
    let norm = lw.get("model.norm", &[h], false)?;
    let g = bld.materialize(&norm, &lw.w.loc("model.norm"));
    x = bld.rms_norm(x, g, cfg.eps, &lw.w.loc("model.norm"));
    let head = if lw.w.present("lm_head") {
        "lm_head"
    } else if cfg.tie_embeddings {
        "model.embed_tokens"
    } else {
        return Err(ImportError::Weight {
            name: "lm_head.weight".into(),
            message: "is not in the checkpoint and tie_word_embeddings is false".into(),
        });
    };
    let logits = if head == "model.embed_tokens" {
        bld.op(
            graph::Op::Linear,
            vec![x, table],
            Attrs::new(),
            TensorType::new([b, s, cfg.vocab as i64], Elem::F32),
            "lm_head",
        )
    } else {
        bld.linear(&mut lw, "lm_head", x, h, cfg.vocab, false, false)?
    };
    rets.push(logits);
    let mut outputs = vec!["logits".to_string()];
    for l in 0..cfg.layers {
        outputs.push(format!("present.{l}.key"));
        outputs.push(format!("present.{l}.value"));
    }
    rets.extend(presents);
    bld.f.rets = rets;
    Ok((Module { funcs: vec![bld.f] }, inputs, outputs, forms))
}

/// A [`Weighing`] that records every form it hands out.
struct LayerWeights<'a, 'w> {
    w: &'a mut (dyn Weighing + 'w),
    forms: &'a mut BTreeMap<String, WeightForm>,
}

impl LayerWeights<'_, '_> {
    fn get(&mut self, module: &str, shape: &[usize], linear: bool) -> ImportResult<WeightForm> {
        let f = self.w.weigh(module, shape, linear)?;
        self.forms.insert(module.to_string(), f.clone());
        Ok(f)
    }
}

fn f32_attr(v: f64) -> Attr {
    Attr::Float(f64::from(v as f32), Elem::F32)
}

/// Appends ops to the function being built.
struct Builder {
    f: Func,
}

impl Builder {
    fn new(f: Func) -> Builder {
        Builder { f }
    }

    fn op(
        &mut self,
        op: graph::Op,
        args: Vec<Value>,
        attrs: Attrs,
        ty: TensorType,
        loc: &str,
    ) -> Value {
        let o = self
            .f
            .append_op(Opcode::Graph(op), args, attrs, vec![ty], Loc::name(loc));
        self.f.result(o)
    }

    fn ty(&self, v: Value) -> TensorType {
        self.f.ty(v).clone()
    }

    fn weight(&mut self, name: &str, ty: &TensorType) -> Value {
        let attrs = Attrs::new().with("name", Attr::Str(name.to_string()));
        self.op(graph::Op::Weight, vec![], attrs, ty.clone(), name)
    }

    fn cast(&mut self, v: Value, elem: Elem, loc: &str) -> Value {
        let ty = self.ty(v);
        if ty.elem == elem {
            return v;
        }
        self.op(
            graph::Op::Cast,
            vec![v],
            Attrs::new(),
            ty.with_elem(elem),
            loc,
        )
    }

    fn reshape(&mut self, v: Value, shape: &[usize], loc: &str) -> Value {
        let ty = self.ty(v);
        let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        if ty.shape == shape {
            return v;
        }
        self.op(
            graph::Op::Reshape,
            vec![v],
            Attrs::new(),
            TensorType::new(shape, ty.elem),
            loc,
        )
    }

    fn binary(&mut self, op: graph::Op, a: Value, b: Value, shape: &[i64], loc: &str) -> Value {
        self.op(
            op,
            vec![a, b],
            Attrs::new(),
            TensorType::new(shape.to_vec(), Elem::F32),
            loc,
        )
    }

    fn dequantize(
        &mut self,
        q: Value,
        s: Value,
        z: Option<Value>,
        axis: i64,
        block: usize,
        loc: &str,
    ) -> Value {
        let ty = self.ty(q).with_elem(Elem::F32);
        let mut args = vec![q, s];
        args.extend(z);
        let attrs = Attrs::new()
            .with("axis", Attr::Int(axis))
            .with("block_size", Attr::Int(block as i64));
        let o = self.f.append_op(
            Opcode::Lowbit(lowbit::Op::Dequantize),
            args,
            attrs,
            vec![ty],
            Loc::name(loc),
        );
        self.f.result(o)
    }

    /// The weight as f32: `[in, out]` for [`WeightForm::Grouped`], the stored shape otherwise.
    fn materialize(&mut self, form: &WeightForm, loc: &str) -> Value {
        match form {
            WeightForm::Float { name, ty } => {
                let w = self.weight(name, ty);
                self.cast(w, Elem::F32, name)
            }
            WeightForm::Grouped {
                codes,
                scales,
                zeros,
                g_idx,
                group,
            } => {
                let q = self.weight(&codes.0, &codes.1);
                let mut s = self.weight(&scales.0, &scales.1);
                let mut z = self.weight(&zeros.0, &zeros.1);
                let mut block = *group;
                if let Some((gi_name, gi_ty)) = g_idx {
                    let gi = self.weight(gi_name, gi_ty);
                    let gather = Attrs::new().with("axis", Attr::Int(0));
                    let sty = codes.1.with_elem(Elem::F16);
                    s = self.op(graph::Op::Gather, vec![s, gi], gather.clone(), sty, loc);
                    z = self.op(graph::Op::Gather, vec![z, gi], gather, codes.1.clone(), loc);
                    block = 1;
                }
                self.dequantize(q, s, Some(z), 0, block, loc)
            }
            WeightForm::Block {
                format,
                name,
                rows,
                cols,
            } => self.block(format, name, *rows, *cols),
        }
    }

    /// A GGUF block tensor from its fields, in the registry's rounding order:
    /// `s = d·sc`, `x = s·(q − z)`, then `x + m` or `x − dmin·m`.
    fn block(&mut self, f: &Format, name: &str, rows: usize, cols: usize) -> Value {
        let parts = super::gguf::block_parts(f, rows, cols);
        let get = |role: &str| parts.iter().find(|p| p.0 == role).map(|p| p.1.clone());
        let blk = f.block_elems();
        let nb = cols / blk;
        let codes_ty = get("codes").expect("every block format has codes");
        let q = self.weight(&format!("{name}:codes"), &codes_ty);
        let d_ty = get("scale").expect("block formats here have a scale");
        let d = self.weight(&format!("{name}:scale"), &d_ty);
        let (s, bs) = match get("sub_scale") {
            Some(sc_ty) => {
                let sub = f.sub_block.expect("sub-scales come with sub-blocks");
                let per = blk / sub;
                let sc = self.weight(&format!("{name}:sub_scale"), &sc_ty);
                let d32 = self.cast(d, Elem::F32, name);
                let d3 = self.reshape(d32, &[rows, nb, 1], name);
                let sc32 = self.cast(sc, Elem::F32, name);
                let sc3 = self.reshape(sc32, &[rows, nb, per], name);
                let prod = self.binary(
                    graph::Op::Mul,
                    d3,
                    sc3,
                    &[rows as i64, nb as i64, per as i64],
                    name,
                );
                (self.reshape(prod, &[rows, nb * per], name), sub)
            }
            None => (d, blk),
        };
        let mut x = self.dequantize(q, s, None, 1, bs, name);
        if let Some(m_ty) = get("min") {
            let m = self.weight(&format!("{name}:min"), &m_ty);
            let m32 = self.cast(m, Elem::F32, name);
            match get("sub_min") {
                None => {
                    let x3 = self.reshape(x, &[rows, nb, blk], name);
                    let m3 = self.reshape(m32, &[rows, nb, 1], name);
                    let y = self.binary(
                        graph::Op::Add,
                        x3,
                        m3,
                        &[rows as i64, nb as i64, blk as i64],
                        name,
                    );
                    x = self.reshape(y, &[rows, cols], name);
                }
                Some(sm_ty) => {
                    let sub = f.sub_block.expect("sub-mins come with sub-blocks");
                    let per = blk / sub;
                    let sm = self.weight(&format!("{name}:sub_min"), &sm_ty);
                    let sm32 = self.cast(sm, Elem::F32, name);
                    let sm3 = self.reshape(sm32, &[rows, nb, per], name);
                    let m3 = self.reshape(m32, &[rows, nb, 1], name);
                    let mt = self.binary(
                        graph::Op::Mul,
                        m3,
                        sm3,
                        &[rows as i64, nb as i64, per as i64],
                        name,
                    );
                    let mt3 = self.reshape(mt, &[rows, nb * per, 1], name);
                    let x3 = self.reshape(x, &[rows, nb * per, sub], name);
                    let y = self.binary(
                        graph::Op::Sub,
                        x3,
                        mt3,
                        &[rows as i64, (nb * per) as i64, sub as i64],
                        name,
                    );
                    x = self.reshape(y, &[rows, cols], name);
                }
            }
        }
        x
    }

    /// `x · Wᵀ (+ bias)` for the linear `module` with `n_in` → `n_out`.
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &mut self,
        lw: &mut LayerWeights<'_, '_>,
        module: &str,
        x: Value,
        n_in: usize,
        n_out: usize,
        bias: bool,
        quantizable: bool,
    ) -> ImportResult<Value> {
        let form = lw.get(module, &[n_out, n_in], quantizable)?;
        let loc = lw.w.loc(module);
        let w = self.materialize(&form, &loc);
        let bias = if bias {
            let bform = lw.w.bias(module, n_out)?;
            Some(self.materialize(&bform, &loc))
        } else {
            None
        };
        let mut shape = self.ty(x).shape;
        *shape.last_mut().expect("rank >= 1") = n_out as i64;
        let out = TensorType::new(shape.clone(), Elem::F32);
        Ok(match form {
            WeightForm::Grouped { .. } => {
                let y = self.op(graph::Op::MatMul, vec![x, w], Attrs::new(), out, &loc);
                match bias {
                    Some(bv) => self.binary(graph::Op::Add, y, bv, &shape, &loc),
                    None => y,
                }
            }
            _ => {
                let mut args = vec![x, w];
                args.extend(bias);
                self.op(graph::Op::Linear, args, Attrs::new(), out, &loc)
            }
        })
    }

    fn rms_norm(&mut self, x: Value, g: Value, eps: f64, loc: &str) -> Value {
        let ty = self.ty(x);
        let attrs = Attrs::new()
            .with("axis", Attr::Int(-1))
            .with("epsilon", f32_attr(eps));
        self.op(graph::Op::RmsNorm, vec![x, g], attrs, ty, loc)
    }

    /// `cos`/`sin` constants `[S, D/2]` for positions `past..past+S`, in f32 as Hugging
    /// Face computes them (`freqs = pos · inv_freq` in f32, then cos and sin).
    fn rope_tables(&mut self, cfg: &LlamaConfig, past: usize, s: usize) -> (Value, Value) {
        let inv = inv_freq(cfg);
        let half = inv.len();
        let mut cos = Vec::with_capacity(s * half);
        let mut sin = Vec::with_capacity(s * half);
        for p in past..past + s {
            for &f in &inv {
                let a = p as f32 * f;
                cos.push(f64::from(a.cos()));
                sin.push(f64::from(a.sin()));
            }
        }
        let ty = TensorType::new([s as i64, half as i64], Elem::F32);
        let mut constant = |values: Vec<f64>, loc: &str| {
            let dense = DenseAttr {
                ty: ty.clone(),
                values: Some(values),
            };
            self.op(
                graph::Op::Constant,
                vec![],
                Attrs::new().with("value", Attr::Dense(dense)),
                ty.clone(),
                loc,
            )
        };
        (
            constant(cos, "rotary_emb.cos"),
            constant(sin, "rotary_emb.sin"),
        )
    }

    /// `[B,S,n·D]` → `[B,n,S,D]`.
    fn split_heads(&mut self, x: Value, b: i64, s: i64, n: i64, d: i64, loc: &str) -> Value {
        let r = self.op(
            graph::Op::Reshape,
            vec![x],
            Attrs::new(),
            TensorType::new([b, s, n, d], Elem::F32),
            loc,
        );
        let perm = Attrs::new().with("perm", Attr::Ints(vec![0, 2, 1, 3]));
        self.op(
            graph::Op::Transpose,
            vec![r],
            perm,
            TensorType::new([b, n, s, d], Elem::F32),
            loc,
        )
    }

    fn rope(&mut self, x: Value, cos: Value, sin: Value, loc: &str) -> Value {
        let ty = self.ty(x);
        let attrs = Attrs::new().with("interleaved", Attr::Bool(false));
        self.op(graph::Op::Rope, vec![x, cos, sin], attrs, ty, loc)
    }

    /// One decoder layer; returns the output and the layer's present key and value.
    #[allow(clippy::too_many_arguments)]
    fn layer(
        &mut self,
        cfg: &LlamaConfig,
        lw: &mut LayerWeights<'_, '_>,
        dims: LlamaDims,
        l: usize,
        x: Value,
        mask: Value,
        (cos, sin): (Value, Value),
        cache: Option<(Value, Value)>,
    ) -> ImportResult<(Value, Value, Value)> {
        let h = cfg.hidden;
        let (nh, nkv, d) = (cfg.heads, cfg.kv_heads, cfg.head_dim);
        let (b, s) = (dims.batch as i64, dims.sequence as i64);
        let m = format!("model.layers.{l}");
        let ln = lw.get(&format!("{m}.input_layernorm"), &[h], false)?;
        let loc = lw.w.loc(&format!("{m}.input_layernorm"));
        let g = self.materialize(&ln, &loc);
        let a = self.rms_norm(x, g, cfg.eps, &loc);
        let attn = format!("{m}.self_attn");
        let q = self.linear(
            lw,
            &format!("{attn}.q_proj"),
            a,
            h,
            nh * d,
            cfg.qkv_bias,
            true,
        )?;
        let k = self.linear(
            lw,
            &format!("{attn}.k_proj"),
            a,
            h,
            nkv * d,
            cfg.qkv_bias,
            true,
        )?;
        let v = self.linear(
            lw,
            &format!("{attn}.v_proj"),
            a,
            h,
            nkv * d,
            cfg.qkv_bias,
            true,
        )?;
        let q = self.split_heads(q, b, s, nh as i64, d as i64, &attn);
        let k = self.split_heads(k, b, s, nkv as i64, d as i64, &attn);
        let v = self.split_heads(v, b, s, nkv as i64, d as i64, &attn);
        let q = self.rope(q, cos, sin, &attn);
        let k = self.rope(k, cos, sin, &attn);
        let (k, v) = match cache {
            None => (k, v),
            Some((pk, pv)) => {
                let t = self.ty(pk).shape[2] + s;
                let ty = TensorType::new([b, nkv as i64, t, d as i64], Elem::F32);
                let cat = Attrs::new().with("axis", Attr::Int(2));
                let k = self.op(
                    graph::Op::Concat,
                    vec![pk, k],
                    cat.clone(),
                    ty.clone(),
                    &attn,
                );
                let v = self.op(graph::Op::Concat, vec![pv, v], cat, ty, &attn);
                (k, v)
            }
        };
        let attrs = Attrs::new()
            .with("scale", f32_attr(1.0 / (d as f64).sqrt()))
            .with("causal", Attr::Bool(true));
        let o = self.f.append_op(
            Opcode::Attn(attn::Op::Sdpa),
            vec![q, k, v, mask],
            attrs,
            vec![TensorType::new([b, nh as i64, s, d as i64], Elem::F32)],
            Loc::name(attn.clone()),
        );
        let o = self.f.result(o);
        let perm = Attrs::new().with("perm", Attr::Ints(vec![0, 2, 1, 3]));
        let o = self.op(
            graph::Op::Transpose,
            vec![o],
            perm,
            TensorType::new([b, s, nh as i64, d as i64], Elem::F32),
            &attn,
        );
        let o = self.op(
            graph::Op::Reshape,
            vec![o],
            Attrs::new(),
            TensorType::new([b, s, (nh * d) as i64], Elem::F32),
            &attn,
        );
        let o = self.linear(
            lw,
            &format!("{attn}.o_proj"),
            o,
            nh * d,
            h,
            cfg.o_bias,
            true,
        )?;
        let hs = [b, s, h as i64];
        let x = self.binary(graph::Op::Add, x, o, &hs, &attn);
        let ln = lw.get(&format!("{m}.post_attention_layernorm"), &[h], false)?;
        let loc = lw.w.loc(&format!("{m}.post_attention_layernorm"));
        let g = self.materialize(&ln, &loc);
        let a = self.rms_norm(x, g, cfg.eps, &loc);
        let mlp = format!("{m}.mlp");
        let i = cfg.intermediate;
        let gate = self.linear(lw, &format!("{mlp}.gate_proj"), a, h, i, cfg.mlp_bias, true)?;
        let up = self.linear(lw, &format!("{mlp}.up_proj"), a, h, i, cfg.mlp_bias, true)?;
        let is = [b, s, i as i64];
        let act = self.op(
            graph::Op::Silu,
            vec![gate],
            Attrs::new(),
            TensorType::new(is, Elem::F32),
            &mlp,
        );
        let prod = self.binary(graph::Op::Mul, act, up, &is, &mlp);
        let down = self.linear(
            lw,
            &format!("{mlp}.down_proj"),
            prod,
            i,
            h,
            cfg.mlp_bias,
            true,
        )?;
        let y = self.binary(graph::Op::Add, x, down, &hs, &mlp);
        Ok((y, k, v))
    }
}
