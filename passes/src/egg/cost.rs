//! The static cost model that extraction minimizes.
//!
//! A node costs what running it as one kernel would: a launch, the bytes it moves and
//! the arithmetic it does, folded into one number of *byte-equivalents*:
//!
//! ```text
//! cost = LAUNCH_COST · launches + bytes_moved + flops / FLOPS_PER_BYTE   (float ops)
//!                                             + flops / INT_FLOPS_PER_BYTE (integer matmuls)
//! ```
//!
//! - `bytes_moved` = the bytes of every operand plus the bytes of every result, each
//!   tensor counted as `elements · bit width / 8` of its element type. This is what makes a
//!   `lowbit.qmatmul` reading `i8` (1 byte per element) cheaper than a `graph.matmul`
//!   reading the `f32` (4 bytes) that two `lowbit.dequantize` kernels wrote first.
//! - `flops`: `2·M·N·K` for matmuls (`K` read off the operand types), `4·B·H·N·M·d` for
//!   attention, one per output element for everything else (a coarse, uniform
//!   approximation: elementwise kernels are bandwidth-bound, so their byte term
//!   dominates anyway).
//! - Free nodes (no launch, no bytes): function arguments, `graph.weight`,
//!   `graph.constant` (their bytes are charged to the consumer that reads them),
//!   `graph.reshape` (a view: row-major data does not move) and multi-result projections.
//!
//! The constants are machine-independent on purpose: extraction must give the same IR on
//! every machine. Timing candidates on a device can come later as an optional step.
//!
//! How node costs add up to class costs (a shared operand's cost split among its users,
//! plus one per op so that fewer ops win ties) is [`super::bridge::best_nodes`]'s business.

use lowbit_dialects::ir::TensorType;
use lowbit_dialects::{attn, graph, kernel, lowbit, rot, Opcode};

use super::analysis::Graph;
use super::lang::Node;

/// What one kernel launch costs, in byte-equivalents.
pub const LAUNCH_COST: f64 = 4096.0;
/// Float operations per byte-equivalent (arithmetic intensity where compute and memory
/// cost the same).
pub const FLOPS_PER_BYTE: f64 = 16.0;
/// Integer (int8/int4) multiply-accumulates are twice as cheap as float ones.
pub const INT_FLOPS_PER_BYTE: f64 = 32.0;

/// The parts of a node's cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Kernel launches (0 or 1).
    pub launches: f64,
    /// Bytes read and written.
    pub bytes: f64,
    /// Float operations.
    pub flops: f64,
    /// Integer operations.
    pub int_ops: f64,
}

impl Cost {
    /// The single number extraction compares.
    pub fn total(&self) -> f64 {
        LAUNCH_COST * self.launches
            + self.bytes
            + self.flops / FLOPS_PER_BYTE
            + self.int_ops / INT_FLOPS_PER_BYTE
    }
}

/// Bytes of a tensor of type `t`.
pub fn bytes(t: &TensorType) -> f64 {
    t.num_elements() as f64 * f64::from(t.elem.bits()) / 8.0
}

/// The cost of one node, given the e-graph for its operands' types.
pub fn node_cost(egraph: &Graph, node: &Node) -> Cost {
    let o = match node {
        Node::Arg(_) | Node::Result(..) => return Cost::default(),
        Node::Op(o) => o,
    };
    let args: Vec<TensorType> = o
        .children
        .iter()
        .filter_map(|&c| egraph[c].data.ty().cloned())
        .collect();
    let out_elems: f64 = o.types.iter().map(|t| t.num_elements() as f64).sum();
    let moved: f64 = args.iter().map(bytes).sum::<f64>() + o.types.iter().map(bytes).sum::<f64>();
    let kernel = |flops: f64| Cost {
        launches: 1.0,
        bytes: moved,
        flops,
        int_ops: 0.0,
    };
    // K of a matmul-like op: the last dim of its first operand.
    let inner = || {
        args.first()
            .and_then(|a| a.shape.last())
            .map_or(1.0, |&k| k as f64)
    };
    match o.opcode {
        Opcode::Graph(g) => match g {
            graph::Op::Weight | graph::Op::Constant | graph::Op::Reshape => Cost::default(),
            graph::Op::MatMul | graph::Op::Linear => kernel(2.0 * out_elems * inner()),
            graph::Op::Add
            | graph::Op::Sub
            | graph::Op::Mul
            | graph::Op::Div
            | graph::Op::Pow
            | graph::Op::Maximum
            | graph::Op::Minimum
            | graph::Op::Equal
            | graph::Op::Less
            | graph::Op::LessEqual
            | graph::Op::Greater
            | graph::Op::GreaterEqual
            | graph::Op::Neg
            | graph::Op::Exp
            | graph::Op::Log
            | graph::Op::Sqrt
            | graph::Op::Rsqrt
            | graph::Op::Tanh
            | graph::Op::Erf
            | graph::Op::Relu
            | graph::Op::Gelu
            | graph::Op::Silu
            | graph::Op::Sigmoid
            | graph::Op::Softmax
            | graph::Op::LogSoftmax
            | graph::Op::LayerNorm
            | graph::Op::RmsNorm
            | graph::Op::Reduce
            | graph::Op::Transpose
            | graph::Op::Concat
            | graph::Op::Split
            | graph::Op::Slice
            | graph::Op::Gather
            | graph::Op::Select
            | graph::Op::Cast
            | graph::Op::Rope
            | graph::Op::CausalMask
            | graph::Op::PaddingMask => kernel(out_elems),
        },
        Opcode::Lowbit(l) => match l {
            lowbit::Op::QMatMul => Cost {
                launches: 1.0,
                bytes: moved,
                flops: out_elems * 2.0,
                int_ops: 2.0 * out_elems * inner(),
            },
            lowbit::Op::Quantize
            | lowbit::Op::Dequantize
            | lowbit::Op::Pack
            | lowbit::Op::Unpack
            | lowbit::Op::Codebook => kernel(out_elems),
        },
        Opcode::Attn(a) => {
            // q [B, H, N, d], k [B, Hkv, M, d]: 2·N·M·d for QKᵀ and as much for PV.
            let q = args.first();
            let k = args.get(1);
            let flops = match (q, k) {
                (Some(q), Some(k)) if q.rank() == 4 && k.rank() == 4 => {
                    let f = |x: i64| x as f64;
                    4.0 * f(q.shape[0])
                        * f(q.shape[1])
                        * f(q.shape[2])
                        * f(k.shape[2])
                        * f(q.shape[3])
                }
                _ => out_elems,
            };
            match a {
                attn::Op::Sdpa
                | attn::Op::QuantizedSdpa
                | attn::Op::BlockSparseSdpa
                | attn::Op::SparseLinear
                | attn::Op::LinearAttention
                | attn::Op::SigmoidAttention => kernel(flops),
            }
        }
        Opcode::Rot(r) => match r {
            // A fast Walsh–Hadamard transform: n·log2(n) per row; a dense rotation: 2·n per
            // output element.
            rot::Op::Hadamard => kernel(out_elems * 16.0),
            rot::Op::Rotate => kernel(2.0 * out_elems * inner()),
        },
        Opcode::Kernel(k) => match k {
            kernel::Op::Gemm => kernel(2.0 * out_elems * inner()),
            kernel::Op::Attention | kernel::Op::AddLayerNorm => kernel(out_elems * 8.0),
        },
    }
}
