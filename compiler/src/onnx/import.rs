//! The import driver: decode the model, bind inputs, walk the nodes, fold what is constant
//! and emit the rest.
//!
//! Each ONNX value is a [`Val`]: a known constant (an initializer, a `Constant`, or the
//! result of a node whose inputs were all constants) or an IR value. An op whose operands
//! are all constants is evaluated at import with the reference interpreter
//! ([`lowbit_dialects::interp::eval_op`]) instead of being emitted, which folds shape
//! subgraphs away. A constant becomes IR only when a non-constant op uses it: an
//! initializer as `graph.weight {name = <initializer name>}`, a small folded constant as
//! `graph.constant`, a large folded one as a weight named `<node name>.arg<i>` after the
//! first node that uses it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use lowbit_dialects::infer::{infer, InferCx};
use lowbit_dialects::interp::{eval_op, EvalCx, Tensor, Weights};
use lowbit_dialects::ir::{Attr, Attrs, DenseAttr, Func, Loc, Module, TensorType, Value};
use lowbit_dialects::{graph, Opcode};
use prost::Message;

use super::proto::{GraphProto, ModelProto};
use super::tensor::{decode, elem_of, type_name};
use super::{io_message, DimBindings, ImportOptions, OnnxError, OnnxResult};

/// Folded constants with at most this many elements become `graph.constant`; larger ones
/// become weights.
const INLINE_LIMIT: usize = 64;

/// The default-domain opset from which the importer maps every op's forms: ops whose
/// meaning changed since are listed in [`super::ops::OLD_FORMS`] and imported in the form
/// of the model's opset. An older model is imported when each of its nodes' schema at the
/// model's opset has the form of its schema at `MIN_OPSET`
/// ([`super::schema_floors::SCHEMA_FLOORS`]); other nodes are refused one by one.
pub const MIN_OPSET: i64 = 10;

/// Refuses a node of a model older than [`MIN_OPSET`] whose op, at the model's opset, has
/// another form than at `MIN_OPSET` (or is not defined at `MIN_OPSET`).
fn check_old_opset(shown: &str, g: &GraphProto, opset: i64) -> OnnxResult<()> {
    use super::schema_floors::SCHEMA_FLOORS;
    for node in g
        .node
        .iter()
        .filter(|n| n.domain.is_empty() || n.domain == "ai.onnx")
    {
        let op = node.op_type.as_str();
        let floor = SCHEMA_FLOORS
            .binary_search_by(|&(o, _)| o.cmp(op))
            .ok()
            .map(|i| SCHEMA_FLOORS[i].1);
        let why = match floor {
            Some(f) if opset >= f => continue,
            Some(f) => format!(
                "{op} at opset {opset} has another form than the one the importer maps ({op}-{f} and later)"
            ),
            None => format!("{op} has no schema at opset {MIN_OPSET}"),
        };
        return Err(OnnxError::Model(format!(
            "'{shown}' uses opset {opset} of the default domain; node '{}' cannot be imported: {why}; convert the model with onnx.version_converter to opset {MIN_OPSET} or later",
            node.name
        )));
    }
    Ok(())
}

/// An imported model.
#[derive(Debug)]
pub struct Imported {
    /// One function, `@main`, with the graph inputs as parameters, in order.
    pub module: Module,
    /// The weights `graph.weight` ops name.
    pub weights: Weights,
    /// The ONNX graph input names, one per parameter.
    pub inputs: Vec<String>,
    /// The ONNX graph output names, one per returned value.
    pub outputs: Vec<String>,
}

/// An ONNX value during import.
#[derive(Clone, Debug)]
pub enum Val {
    /// Known at import; `name` is the initializer name when it is one.
    Const(Rc<Tensor>, Option<String>),
    /// Computed at run time.
    Ir(Value),
}

/// The state of one import: the function being built and the ONNX value table.
pub struct Importer {
    /// The function under construction.
    pub f: Func,
    /// ONNX value name → value.
    pub vals: HashMap<String, Val>,
    /// Weights referenced so far.
    pub weights: Weights,
    /// Constants already materialized, by initializer or value name.
    materialized: HashMap<String, Value>,
    /// The default-domain opset.
    pub opset: i64,
    /// Every imported opset, by domain (`ai.onnx` for the default one).
    pub opsets: HashMap<String, i64>,
    /// See [`ImportOptions::assume_no_nan`].
    pub assume_no_nan: bool,
    /// ONNX values that are `Cast`s of large integer initializers to float, by name: the
    /// initializer (a `Mul` by a scale makes them `lowbit.dequantize`).
    pub int_casts: HashMap<String, Val>,
}

impl Importer {
    /// The type of a value.
    pub fn ty(&self, v: &Val) -> TensorType {
        match v {
            Val::Const(t, _) => t.ty.clone(),
            Val::Ir(v) => self.f.ty(*v).clone(),
        }
    }

    /// `v` as an IR value, emitting a weight or constant op the first time.
    pub fn materialize(&mut self, v: &Val, hint: &str) -> Value {
        let (t, name) = match v {
            Val::Ir(v) => return *v,
            Val::Const(t, name) => (t, name),
        };
        // Only named constants (initializers) are shared: unnamed ones are folded values,
        // and two of them may share a hint (`<node>.arg1`) with different data.
        let key = name.clone().unwrap_or_else(|| hint.to_string());
        if name.is_some() {
            if let Some(&v) = self.materialized.get(&key) {
                if self.f.ty(v) == &t.ty {
                    return v;
                }
            }
        }
        let (opcode, attrs) = if name.is_none() && t.data.len() <= INLINE_LIMIT {
            let dense = DenseAttr {
                ty: t.ty.clone(),
                values: Some(t.data.clone()),
            };
            (
                graph::Op::Constant,
                Attrs::new().with("value", Attr::Dense(dense)),
            )
        } else {
            let mut wname = key.clone();
            while self
                .weights
                .get(&wname)
                .is_some_and(|w| name.is_none() || w.ty != t.ty)
            {
                wname.push('_');
            }
            self.weights.insert(wname.clone(), (**t).clone());
            (
                graph::Op::Weight,
                Attrs::new().with("name", Attr::Str(wname)),
            )
        };
        let op = self.f.append_op(
            Opcode::Graph(opcode),
            vec![],
            attrs,
            vec![t.ty.clone()],
            Loc::name(key.clone()),
        );
        let value = self.f.result(op);
        if name.is_some() {
            self.materialized.insert(key, value);
        }
        value
    }

    /// Emits `opcode` on `args`, or evaluates it when every operand is a constant.
    /// `declared` gives the result types of ops that take them from the declaration
    /// (`reshape`, `cast`, `split`); the others are inferred.
    pub fn emit(
        &mut self,
        opcode: Opcode,
        args: &[Val],
        attrs: Attrs,
        declared: Option<Vec<TensorType>>,
        loc: &str,
    ) -> Result<Vec<Val>, String> {
        let arg_types: Vec<TensorType> = args.iter().map(|a| self.ty(a)).collect();
        let arg_refs: Vec<&TensorType> = arg_types.iter().collect();
        let declared_refs: Vec<&TensorType> = declared.iter().flatten().collect();
        let results = infer(&InferCx {
            opcode,
            args: &arg_refs,
            attrs: &attrs,
            results: &declared_refs,
        })
        .map_err(|m| format!("'{}' {m}", opcode.name()))?;
        let consts: Option<Vec<&Tensor>> = args
            .iter()
            .map(|a| match a {
                Val::Const(t, _) => Some(&**t),
                Val::Ir(_) => None,
            })
            .collect();
        if let Some(consts) = consts {
            let result_refs: Vec<&TensorType> = results.iter().collect();
            let out = eval_op(
                opcode,
                &EvalCx {
                    args: &consts,
                    attrs: &attrs,
                    results: &result_refs,
                    weights: &Weights::new(),
                },
            )
            .map_err(|m| format!("'{}' {m}", opcode.name()))?;
            return Ok(out
                .into_iter()
                .map(|t| Val::Const(Rc::new(t), None))
                .collect());
        }
        let values: Vec<Value> = args
            .iter()
            .enumerate()
            .map(|(i, a)| self.materialize(a, &format!("{loc}.arg{i}")))
            .collect();
        let op = self
            .f
            .append_op(opcode, values, attrs, results, Loc::name(loc));
        Ok(self.f.ops[op].results.iter().map(|&r| Val::Ir(r)).collect())
    }
}

/// Reads and imports the model at `path`.
pub fn import_model(path: &Path, options: &ImportOptions) -> OnnxResult<Imported> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| OnnxError::Io {
        path: shown.clone(),
        message: io_message(&e),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    import_bytes(&bytes, &shown, &dir, options)
}

/// Imports a model from its serialized bytes; `shown` names it in messages and external
/// data is read from (and confined to) `dir`. Any byte string gives a model or an error,
/// never a panic (the `onnx_import` fuzz target checks this).
pub fn import_bytes(
    bytes: &[u8],
    shown: &str,
    dir: &Path,
    options: &ImportOptions,
) -> OnnxResult<Imported> {
    let malformed = |message: String| OnnxError::Malformed {
        path: shown.to_string(),
        message,
    };
    let model = ModelProto::decode(bytes).map_err(|e| {
        malformed(format!(
            "the protobuf does not decode ({e}); the file may be truncated"
        ))
    })?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| malformed("it has no graph".to_string()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| malformed("it imports no opset of the default domain".to_string()))?;
    if opset < 1 {
        return Err(malformed(format!(
            "it imports opset {opset} of the default domain"
        )));
    }
    if opset < MIN_OPSET {
        check_old_opset(shown, graph, opset)?;
    }
    let opsets = model
        .opset_import
        .iter()
        .map(|o| {
            let d = if o.domain.is_empty() {
                "ai.onnx"
            } else {
                &o.domain
            };
            (d.to_string(), o.version)
        })
        .collect();
    import_graph(graph, dir, options, opsets)
}

fn import_graph(
    g: &GraphProto,
    dir: &Path,
    options: &ImportOptions,
    opsets: HashMap<String, i64>,
) -> OnnxResult<Imported> {
    let opset = opsets["ai.onnx"];
    let mut vals = HashMap::new();
    for init in &g.initializer {
        let t = decode(init, dir)?;
        vals.insert(
            init.name.clone(),
            Val::Const(Rc::new(t), Some(init.name.clone())),
        );
    }
    // Graph inputs that are also initializers are constants (ONNX IR < 4 lists them).
    let mut inputs = Vec::new();
    let mut param_types = Vec::new();
    for input in g.input.iter().filter(|i| !vals.contains_key(&i.name)) {
        param_types.push(input_type(input, &options.dims)?);
        inputs.push(input.name.clone());
    }
    let mut im = Importer {
        f: Func::new("main", &param_types),
        vals,
        weights: BTreeMap::new(),
        materialized: HashMap::new(),
        opset,
        opsets,
        assume_no_nan: options.assume_no_nan,
        int_casts: HashMap::new(),
    };
    for (name, &p) in inputs.iter().zip(&im.f.params.clone()) {
        im.vals.insert(name.clone(), Val::Ir(p));
    }
    for node in &g.node {
        super::ops::import_node(&mut im, node)?;
    }
    let mut outputs = Vec::new();
    for out in &g.output {
        let v = im.vals.get(&out.name).cloned().ok_or_else(|| {
            OnnxError::Model(format!("graph output '{}' is never computed", out.name))
        })?;
        let value = im.materialize(&v, &out.name);
        im.f.rets.push(value);
        outputs.push(out.name.clone());
    }
    im.f.remove_dead();
    im.f.compact();
    let live: std::collections::BTreeSet<&str> =
        im.f.body
            .iter()
            .filter_map(|&op| im.f.ops[op].attrs.str("name"))
            .collect();
    let weights = std::mem::take(&mut im.weights)
        .into_iter()
        .filter(|(k, _)| live.contains(k.as_str()))
        .collect();
    Ok(Imported {
        module: Module { funcs: vec![im.f] },
        weights,
        inputs,
        outputs,
    })
}

/// The static type of a graph input, symbolic dims bound from `dims`.
fn input_type(input: &super::proto::ValueInfoProto, dims: &DimBindings) -> OnnxResult<TensorType> {
    let bad = |m: String| OnnxError::Model(format!("input '{}' {m}", input.name));
    let tt = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| bad("is not a tensor".to_string()))?;
    let elem = elem_of(tt.elem_type).ok_or_else(|| {
        bad(format!(
            "has unsupported element type {}",
            type_name(tt.elem_type)
        ))
    })?;
    let shape = tt
        .shape
        .as_ref()
        .ok_or_else(|| bad("has no shape".to_string()))?;
    let mut out = Vec::new();
    for d in &shape.dim {
        match (&d.dim_param, d.dim_value) {
            (Some(p), _) if !p.is_empty() => match dims.get(p) {
                Some(&n) => out.push(n),
                None => {
                    return Err(OnnxError::UnboundDim {
                        input: input.name.clone(),
                        dim: p.clone(),
                    })
                }
            },
            (_, Some(n)) if n >= 0 => out.push(n),
            _ => {
                return Err(bad(
                    "has a dimension with neither a size nor a name".to_string()
                ))
            }
        }
    }
    Ok(TensorType::new(out, elem))
}
