//! The IR core: types, attributes, locations, functions, text form and verifier.

pub mod attrs;
pub mod diag;
pub mod func;
pub mod loc;
pub mod parse;
pub mod print;
pub mod types;
pub mod verify;

pub use attrs::{Attr, AttrKind, Attrs, DenseAttr};
pub use func::{Func, Module, Op, OpData, Value, ValueData, ValueDef};
pub use loc::Loc;
pub use types::{Elem, TensorType};
