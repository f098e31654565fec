//! `BertModel` checkpoints (and sentence-transformers around them) to lowbit IR.
//!
//! [`import_dir`] reads `config.json`, the weights (see [`WeightStore`]) and, when present,
//! `modules.json` with the pooling module's `config.json`, and builds
//!
//! ```text
//! func @main(input_ids: i64[B,S], attention_mask: i64[B,S], token_type_ids: i64[B,S])
//!     -> (last_hidden_state: f32[B,S,H] [, sentence_embedding: f32[B,H]])
//! ```
//!
//! Parameters are positional in the IR; their Hugging Face names are in [`Imported::inputs`]
//! and [`Imported::outputs`], in order. Every op's location is the safetensors key (or
//! module name) it came from; weights stay in the checkpoint as `graph.weight` references.
//!
//! The math is BERT's: embeddings (word + absolute position + token type, layer norm),
//! then per layer self-attention through `attn.sdpa` with the additive padding mask,
//! residual and layer norm, an erf-GELU feed-forward, residual and layer norm. Pooling is
//! the masked mean (sentence-transformers `pooling_mode_mean_tokens`) and `Normalize` is
//! division by the L2 norm. Two clamps of sentence-transformers are left out: the token
//! count's floor of 1e-9 (only a row with no token at all reaches it) and the norm's floor
//! of 1e-12. A config field or module that changes the math in a way not lowered here is
//! an error naming it.

use std::path::{Path, PathBuf};

use lowbit_dialects::dialect::Opcode;
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, Elem, Func, Loc, Module, TensorType, Value};
use lowbit_dialects::{attn, graph};
use serde_json::Value as Json;

use super::{ImportError, ImportResult, WeightStore};

/// Static sizes of the imported function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// `B`.
    pub batch: usize,
    /// `S`.
    pub sequence: usize,
}

impl Default for Dims {
    fn default() -> Dims {
        Dims {
            batch: 1,
            sequence: 128,
        }
    }
}

/// An imported checkpoint: the IR, the names of its inputs and outputs, and its weights.
#[derive(Debug)]
pub struct Imported {
    /// One function, `@main`.
    pub module: Module,
    /// Hugging Face names of the parameters, in order.
    pub inputs: Vec<String>,
    /// Hugging Face names of the results, in order.
    pub outputs: Vec<String>,
    /// The checkpoint's weights.
    pub weights: WeightStore,
}

/// The `config.json` fields the lowering uses.
#[derive(Clone, Debug)]
struct Config {
    hidden: usize,
    layers: usize,
    heads: usize,
    intermediate: usize,
    eps: f64,
    max_positions: usize,
}

/// What follows the transformer (sentence-transformers modules).
#[derive(Clone, Copy, Debug, Default)]
struct Head {
    mean_pool: bool,
    normalize: bool,
}

/// Imports the checkpoint directory `dir` with the given static sizes.
pub fn import_dir(dir: impl AsRef<Path>, dims: Dims) -> ImportResult<Imported> {
    let dir = dir.as_ref();
    let config_path = dir.join("config.json");
    let cfg = parse_config(&config_path, &read_json(&config_path)?)?;
    if dims.batch == 0 || dims.sequence == 0 {
        return Err(config_err(
            &config_path,
            "batch and sequence must be at least 1".to_string(),
        ));
    }
    if dims.sequence > cfg.max_positions {
        return Err(config_err(
            &config_path,
            format!(
                "sequence {} exceeds max_position_embeddings {}",
                dims.sequence, cfg.max_positions
            ),
        ));
    }
    let head = parse_modules(dir)?;
    let weights = WeightStore::open(dir)?;
    let prefix = if weights.entry("embeddings.word_embeddings.weight").is_some() {
        ""
    } else if weights
        .entry("bert.embeddings.word_embeddings.weight")
        .is_some()
    {
        "bert."
    } else {
        return Err(ImportError::Weight {
            name: "embeddings.word_embeddings.weight".to_string(),
            message: "is not in the checkpoint (nor under 'bert.')".to_string(),
        });
    };
    let mut b = Builder {
        f: Func::new("main", &[]),
        weights: &weights,
        prefix,
    };
    let ids = TensorType::new([dims.batch as i64, dims.sequence as i64], Elem::I64);
    b.f = Func::new("main", &[ids.clone(), ids.clone(), ids]);
    b.f.loc = Loc::name(dir.display().to_string());
    let (input_ids, mask, types) = (b.f.params[0], b.f.params[1], b.f.params[2]);
    let mut x = b.embeddings(&cfg, dims, input_ids, types)?;
    let add_mask = b.op(
        graph::Op::PaddingMask,
        vec![mask],
        Attrs::new(),
        TensorType::new([dims.batch as i64, 1, 1, dims.sequence as i64], Elem::F32),
        "attention_mask",
    );
    for l in 0..cfg.layers {
        x = b.layer(&cfg, dims, l, x, add_mask)?;
    }
    let mut rets = vec![x];
    let mut outputs = vec!["last_hidden_state".to_string()];
    if head.mean_pool {
        let mut e = b.mean_pool(dims, cfg.hidden, x, mask);
        if head.normalize {
            e = b.normalize(e);
        }
        rets.push(e);
        outputs.push("sentence_embedding".to_string());
    }
    b.f.rets = rets;
    let module = Module { funcs: vec![b.f] };
    Ok(Imported {
        module,
        inputs: ["input_ids", "attention_mask", "token_type_ids"]
            .map(String::from)
            .to_vec(),
        outputs,
        weights,
    })
}

fn read_json(path: &Path) -> ImportResult<Json> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::io(path, &e))?;
    serde_json::from_str(&text).map_err(|e| config_err(path, format!("is not valid JSON ({e})")))
}

fn config_err(path: &Path, message: String) -> ImportError {
    ImportError::Config {
        path: path.to_path_buf(),
        message,
    }
}

/// Reads and checks `config.json`.
fn parse_config(path: &Path, j: &Json) -> ImportResult<Config> {
    let err = |m: String| config_err(path, m);
    let archs = j.get("architectures").and_then(Json::as_array);
    if let Some(archs) = archs {
        for a in archs {
            if a.as_str() != Some("BertModel") {
                return Err(err(format!(
                    "architectures names {a}, which lowbit cannot import (supported: \"BertModel\")"
                )));
            }
        }
    } else if j.get("model_type").and_then(Json::as_str) != Some("bert") {
        return Err(err(
            "has neither architectures [\"BertModel\"] nor model_type \"bert\"".to_string(),
        ));
    }
    if let Some(t) = j.get("model_type").and_then(Json::as_str) {
        if t != "bert" {
            return Err(err(format!(
                "model_type is \"{t}\", which lowbit cannot import as BertModel"
            )));
        }
    }
    let str_field = |k: &str, default: &str, allowed: &[&str]| -> ImportResult<()> {
        let v = match j.get(k) {
            None | Some(Json::Null) => default.to_string(),
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        if allowed.contains(&v.as_str()) {
            Ok(())
        } else {
            Err(err(format!(
                "{k} is \"{v}\", which lowbit cannot import (supported: {})",
                allowed.join(", ")
            )))
        }
    };
    str_field("hidden_act", "gelu", &["gelu"])?;
    str_field("position_embedding_type", "absolute", &["absolute"])?;
    for flag in ["is_decoder", "add_cross_attention"] {
        if j.get(flag).and_then(Json::as_bool) == Some(true) {
            return Err(err(format!("{flag} is true, which lowbit cannot import")));
        }
    }
    let size = |k: &str| -> ImportResult<usize> {
        j.get(k)
            .and_then(Json::as_u64)
            .filter(|&v| v > 0)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| err(format!("{k} is missing or not a positive integer")))
    };
    let cfg = Config {
        hidden: size("hidden_size")?,
        layers: size("num_hidden_layers")?,
        heads: size("num_attention_heads")?,
        intermediate: size("intermediate_size")?,
        eps: match j.get("layer_norm_eps") {
            None => 1e-12,
            Some(v) => v
                .as_f64()
                .filter(|e| *e >= 0.0)
                .ok_or_else(|| err(format!("layer_norm_eps is {v}, not a number")))?,
        },
        max_positions: size("max_position_embeddings")?,
    };
    if !cfg.hidden.is_multiple_of(cfg.heads) {
        return Err(err(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            cfg.hidden, cfg.heads
        )));
    }
    Ok(cfg)
}

/// Reads `modules.json` (sentence-transformers) when present.
fn parse_modules(dir: &Path) -> ImportResult<Head> {
    let path = dir.join("modules.json");
    if !path.is_file() {
        return Ok(Head::default());
    }
    let j = read_json(&path)?;
    let list = j
        .as_array()
        .ok_or_else(|| config_err(&path, "is not a JSON array of modules".to_string()))?;
    let mut head = Head::default();
    for m in list {
        let ty = m.get("type").and_then(Json::as_str).unwrap_or("");
        let sub = m.get("path").and_then(Json::as_str).unwrap_or("");
        match ty {
            "sentence_transformers.models.Transformer" => {}
            "sentence_transformers.models.Pooling" => {
                let cfg_path: PathBuf = dir.join(sub).join("config.json");
                parse_pooling(&cfg_path, &read_json(&cfg_path)?)?;
                head.mean_pool = true;
            }
            "sentence_transformers.models.Normalize" if head.mean_pool => head.normalize = true,
            _ => {
                return Err(config_err(
                    &path,
                    format!("module type \"{ty}\" is not supported (supported: Transformer, Pooling, Normalize after Pooling)"),
                ))
            }
        }
    }
    Ok(head)
}

/// Checks a pooling `config.json` asks for mean pooling only.
fn parse_pooling(path: &Path, j: &Json) -> ImportResult<()> {
    let on = |k: &str| j.get(k).and_then(Json::as_bool) == Some(true);
    if !on("pooling_mode_mean_tokens") {
        return Err(config_err(
            path,
            "pooling_mode_mean_tokens is not true; only mean pooling is supported".to_string(),
        ));
    }
    for k in [
        "pooling_mode_cls_token",
        "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
        "pooling_mode_lasttoken",
    ] {
        if on(k) {
            return Err(config_err(
                path,
                format!("{k} is true; only mean pooling is supported"),
            ));
        }
    }
    if j.get("include_prompt").and_then(Json::as_bool) == Some(false) {
        return Err(config_err(
            path,
            "include_prompt is false, which lowbit cannot import".to_string(),
        ));
    }
    Ok(())
}

/// Appends ops to the function being built.
struct Builder<'a> {
    f: Func,
    weights: &'a WeightStore,
    prefix: &'static str,
}

fn f32_attr(v: f64) -> Attr {
    Attr::Float(f64::from(v as f32), Elem::F32)
}

impl Builder<'_> {
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

    fn shape(&self, v: Value) -> Vec<i64> {
        self.f.ty(v).shape.clone()
    }

    /// `graph.weight` for `key` (prefixed), checked against `shape`; cast to f32.
    fn weight(&mut self, key: &str, shape: &[usize]) -> ImportResult<Value> {
        let name = format!("{}{key}", self.prefix);
        let e = self
            .weights
            .entry(&name)
            .ok_or_else(|| ImportError::Weight {
                name: name.clone(),
                message: "is not in the checkpoint".to_string(),
            })?;
        if e.shape != shape {
            return Err(ImportError::Weight {
                name,
                message: format!("has shape {:?}, expected {shape:?}", e.shape),
            });
        }
        let elem = e.dtype.elem();
        if !matches!(elem, Elem::F32 | Elem::F16 | Elem::BF16 | Elem::F64) {
            return Err(ImportError::Weight {
                name,
                message: format!("has dtype {:?}, expected a float type", e.dtype),
            });
        }
        let ty = e.tensor_type();
        let attrs = Attrs::new().with("name", Attr::Str(name.clone()));
        let w = self.op(graph::Op::Weight, vec![], attrs, ty.clone(), &name);
        Ok(if elem == Elem::F32 {
            w
        } else {
            self.op(
                graph::Op::Cast,
                vec![w],
                Attrs::new(),
                ty.with_elem(Elem::F32),
                &name,
            )
        })
    }

    /// `linear` with `<module>.weight` `[out, in]` and `<module>.bias`.
    fn linear(&mut self, module: &str, x: Value, n_in: usize, n_out: usize) -> ImportResult<Value> {
        let w = self.weight(&format!("{module}.weight"), &[n_out, n_in])?;
        let bias = self.weight(&format!("{module}.bias"), &[n_out])?;
        let mut shape = self.shape(x);
        *shape.last_mut().expect("rank >= 1") = n_out as i64;
        let loc = format!("{}{module}", self.prefix);
        Ok(self.op(
            graph::Op::Linear,
            vec![x, w, bias],
            Attrs::new(),
            TensorType::new(shape, Elem::F32),
            &loc,
        ))
    }

    /// `layer_norm` over the last dim with `<module>.weight` / `<module>.bias`.
    fn layer_norm(
        &mut self,
        module: &str,
        x: Value,
        hidden: usize,
        eps: f64,
    ) -> ImportResult<Value> {
        let g = self.weight(&format!("{module}.weight"), &[hidden])?;
        let bta = self.weight(&format!("{module}.bias"), &[hidden])?;
        let attrs = Attrs::new()
            .with("axis", Attr::Int(-1))
            .with("epsilon", f32_attr(eps));
        let ty = self.f.ty(x).clone();
        let loc = format!("{}{module}", self.prefix);
        Ok(self.op(graph::Op::LayerNorm, vec![x, g, bta], attrs, ty, &loc))
    }

    fn add(&mut self, a: Value, b: Value, loc: &str) -> Value {
        let ty = self.f.ty(a).clone();
        self.op(graph::Op::Add, vec![a, b], Attrs::new(), ty, loc)
    }

    fn embeddings(
        &mut self,
        cfg: &Config,
        dims: Dims,
        ids: Value,
        types: Value,
    ) -> ImportResult<Value> {
        let h = cfg.hidden;
        let (bs, s) = (dims.batch as i64, dims.sequence as i64);
        let out = TensorType::new([bs, s, h as i64], Elem::F32);
        let gather = |b: &mut Self, table: Value, idx: Value, ty: TensorType, loc: &str| {
            let attrs = Attrs::new().with("axis", Attr::Int(0));
            b.op(graph::Op::Gather, vec![table, idx], attrs, ty, loc)
        };
        let vocab = self
            .weights
            .entry(&format!("{}embeddings.word_embeddings.weight", self.prefix))
            .map_or(0, |e| e.shape[0]);
        let word = self.weight("embeddings.word_embeddings.weight", &[vocab, h])?;
        let loc = format!("{}embeddings.word_embeddings", self.prefix);
        let mut x = gather(self, word, ids, out.clone(), &loc);
        let pos = self.weight(
            "embeddings.position_embeddings.weight",
            &[cfg.max_positions, h],
        )?;
        let pos_ty = TensorType::new([s], Elem::I64);
        let positions = DenseAttr {
            ty: pos_ty.clone(),
            values: Some((0..s).map(|i| i as f64).collect()),
        };
        let loc = format!("{}embeddings.position_ids", self.prefix);
        let pos_ids = self.op(
            graph::Op::Constant,
            vec![],
            Attrs::new().with("value", Attr::Dense(positions)),
            pos_ty,
            &loc,
        );
        let loc = format!("{}embeddings.position_embeddings", self.prefix);
        let p = gather(
            self,
            pos,
            pos_ids,
            TensorType::new([s, h as i64], Elem::F32),
            &loc,
        );
        x = self.add(x, p, &loc);
        let n_types = self
            .weights
            .entry(&format!(
                "{}embeddings.token_type_embeddings.weight",
                self.prefix
            ))
            .map_or(0, |e| e.shape[0]);
        let tt = self.weight("embeddings.token_type_embeddings.weight", &[n_types, h])?;
        let loc = format!("{}embeddings.token_type_embeddings", self.prefix);
        let t = gather(self, tt, types, out, &loc);
        x = self.add(x, t, &loc);
        self.layer_norm("embeddings.LayerNorm", x, h, cfg.eps)
    }

    /// `[B,S,H]` → `[B,heads,S,d]`.
    fn split_heads(&mut self, x: Value, dims: Dims, heads: usize, loc: &str) -> Value {
        let (b, s) = (dims.batch as i64, dims.sequence as i64);
        let d = self.shape(x)[2] / heads as i64;
        let r = self.op(
            graph::Op::Reshape,
            vec![x],
            Attrs::new(),
            TensorType::new([b, s, heads as i64, d], Elem::F32),
            loc,
        );
        let perm = Attrs::new().with("perm", Attr::Ints(vec![0, 2, 1, 3]));
        self.op(
            graph::Op::Transpose,
            vec![r],
            perm,
            TensorType::new([b, heads as i64, s, d], Elem::F32),
            loc,
        )
    }

    fn layer(
        &mut self,
        cfg: &Config,
        dims: Dims,
        l: usize,
        x: Value,
        mask: Value,
    ) -> ImportResult<Value> {
        let (h, nh) = (cfg.hidden, cfg.heads);
        let (b, s, d) = (dims.batch as i64, dims.sequence as i64, (h / nh) as i64);
        let m = format!("encoder.layer.{l}.attention");
        let loc = format!("{}{m}.self", self.prefix);
        let mut qkv = Vec::new();
        for which in ["query", "key", "value"] {
            let p = self.linear(&format!("{m}.self.{which}"), x, h, h)?;
            qkv.push(self.split_heads(p, dims, nh, &loc));
        }
        qkv.push(mask);
        let attrs = Attrs::new()
            .with("scale", f32_attr(1.0 / (d as f64).sqrt()))
            .with("causal", Attr::Bool(false));
        let o = self.f.append_op(
            Opcode::Attn(attn::Op::Sdpa),
            qkv,
            attrs,
            vec![TensorType::new([b, nh as i64, s, d], Elem::F32)],
            Loc::name(loc.clone()),
        );
        let o = self.f.result(o);
        let perm = Attrs::new().with("perm", Attr::Ints(vec![0, 2, 1, 3]));
        let o = self.op(
            graph::Op::Transpose,
            vec![o],
            perm,
            TensorType::new([b, s, nh as i64, d], Elem::F32),
            &loc,
        );
        let o = self.op(
            graph::Op::Reshape,
            vec![o],
            Attrs::new(),
            TensorType::new([b, s, h as i64], Elem::F32),
            &loc,
        );
        let o = self.linear(&format!("{m}.output.dense"), o, h, h)?;
        let loc = format!("{}{m}.output", self.prefix);
        let o = self.add(o, x, &loc);
        let a = self.layer_norm(&format!("{m}.output.LayerNorm"), o, h, cfg.eps)?;
        let m = format!("encoder.layer.{l}");
        let i = self.linear(&format!("{m}.intermediate.dense"), a, h, cfg.intermediate)?;
        let ty = self.f.ty(i).clone();
        let loc = format!("{}{m}.intermediate", self.prefix);
        let g = self.op(
            graph::Op::Gelu,
            vec![i],
            Attrs::new().with("approximate", Attr::Str("none".into())),
            ty,
            &loc,
        );
        let o = self.linear(&format!("{m}.output.dense"), g, cfg.intermediate, h)?;
        let loc = format!("{}{m}.output", self.prefix);
        let o = self.add(o, a, &loc);
        self.layer_norm(&format!("{m}.output.LayerNorm"), o, h, cfg.eps)
    }

    fn reduce_sum(&mut self, x: Value, axis: i64, keepdims: bool, loc: &str) -> Value {
        let mut shape = self.shape(x);
        let ax = axis as usize;
        if keepdims {
            shape[ax] = 1;
        } else {
            shape.remove(ax);
        }
        let attrs = Attrs::new()
            .with("kind", Attr::Str("sum".into()))
            .with("axes", Attr::Ints(vec![axis]))
            .with("keepdims", Attr::Bool(keepdims));
        self.op(
            graph::Op::Reduce,
            vec![x],
            attrs,
            TensorType::new(shape, Elem::F32),
            loc,
        )
    }

    /// Masked mean over the sequence: `Σ_s x·m / Σ_s m`.
    fn mean_pool(&mut self, dims: Dims, hidden: usize, x: Value, mask: Value) -> Value {
        let loc = "1_Pooling";
        let (b, s) = (dims.batch as i64, dims.sequence as i64);
        let m = self.op(
            graph::Op::Cast,
            vec![mask],
            Attrs::new(),
            TensorType::new([b, s], Elem::F32),
            loc,
        );
        let m3 = self.op(
            graph::Op::Reshape,
            vec![m],
            Attrs::new(),
            TensorType::new([b, s, 1], Elem::F32),
            loc,
        );
        let xm = self.op(
            graph::Op::Mul,
            vec![x, m3],
            Attrs::new(),
            TensorType::new([b, s, hidden as i64], Elem::F32),
            loc,
        );
        let sum = self.reduce_sum(xm, 1, false, loc);
        let count = self.reduce_sum(m, 1, true, loc);
        self.op(
            graph::Op::Div,
            vec![sum, count],
            Attrs::new(),
            TensorType::new([b, hidden as i64], Elem::F32),
            loc,
        )
    }

    /// `x / ‖x‖₂` over the last dim.
    fn normalize(&mut self, x: Value) -> Value {
        let loc = "2_Normalize";
        let ty = self.f.ty(x).clone();
        let sq = self.op(graph::Op::Mul, vec![x, x], Attrs::new(), ty.clone(), loc);
        let ss = self.reduce_sum(sq, 1, true, loc);
        let sty = self.f.ty(ss).clone();
        let n = self.op(graph::Op::Sqrt, vec![ss], Attrs::new(), sty, loc);
        self.op(graph::Op::Div, vec![x, n], Attrs::new(), ty, loc)
    }
}
