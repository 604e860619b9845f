//! The minijinja environment of a sync, the `row` a template sees, and how output becomes a
//! property value (a string, or null).

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use minijinja::value::{Enumerator, Object, ObjectExt, ObjectRepr, ValueKind};
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, Template, UndefinedBehavior, Value,
    escape_formatter,
};

use crate::format::{cell_value, normalize, write_f64};
use crate::{filters, liquid};

/// The fuel one render may burn: about this many template instructions (or 64 times as many
/// bytes of data). Mapping templates need a few hundred; a runaway loop stops here with an
/// error instead of hanging the sync.
pub const TEMPLATE_FUEL: u64 = 100_000;

thread_local! {
    /// Set by the formatter when a render prints `none`; read by [`render`]. Renders are
    /// synchronous on the calling thread, so a thread-local flag is exact and allocation-free.
    static PRINTED_NONE: Cell<bool> = const { Cell::new(false) };
}

/// The environment every template of a sync is compiled in.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Keeps error spans (byte ranges) so syntax errors point at the right column.
    env.set_debug(true);
    // Printing or iterating an undefined value (a column that does not exist) is an error;
    // testing one in `{% if %}` is allowed.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Property values are plain text: no HTML escaping whatever the property is called.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_formatter(format_value);
    filters::register(&mut env);
    liquid::register(&mut env);
    env
}

/// Prints values: `none` as nothing (remembering that it happened, see [`render`]), floats and
/// booleans as columns are formatted (`17.0` → `17`, `true`), everything else as minijinja does.
fn format_value(
    out: &mut Output<'_>,
    state: &mut State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    if value.is_none() {
        PRINTED_NONE.with(|flag| flag.set(true));
        return Ok(());
    }
    match value.kind() {
        ValueKind::Number if !value.is_integer() => {
            let v = f64::try_from(value.clone())?;
            write_f64(out, v).map_err(|_| Error::from(ErrorKind::WriteFailure))
        }
        // minijinja prints Python's `True`; destinations (and columns) use `true`.
        ValueKind::Bool => {
            let text = if value.is_true() { "true" } else { "false" };
            out.write_str(text)
                .map_err(|_| Error::from(ErrorKind::WriteFailure))
        }
        _ => escape_formatter(out, state, value),
    }
}

/// Renders one template: `Ok(None)` when the output is empty (or only whitespace) and the
/// template printed `none` (e.g. `{{ null }}` or a null column), otherwise the output as it is.
pub(crate) fn render(
    template: &Template<'_, '_>,
    context: &Value,
) -> Result<Option<String>, Error> {
    PRINTED_NONE.with(|flag| flag.set(false));
    let result = template.render(context.clone());
    let printed_none = PRINTED_NONE.with(|flag| flag.replace(false));
    let output = result?;
    if printed_none && output.trim().is_empty() {
        Ok(None)
    } else {
        Ok(Some(output))
    }
}

/// The columns of one batch, shared by the `row` objects of all its rows.
pub(crate) struct BatchView {
    names: Vec<String>,
    index: HashMap<String, usize>,
    columns: Vec<ArrayRef>,
}

impl fmt::Debug for BatchView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchView")
            .field("columns", &self.names)
            .finish_non_exhaustive()
    }
}

impl BatchView {
    pub(crate) fn new(batch: &RecordBatch) -> Arc<Self> {
        let schema = batch.schema();
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let columns = batch.columns().iter().map(normalize).collect();
        Arc::new(Self {
            names,
            index,
            columns,
        })
    }
}

/// `row` in a template: a map from column name to the cell's value, read lazily so a template
/// only pays for the columns it uses.
#[derive(Debug)]
struct RowObject {
    view: Arc<BatchView>,
    row: usize,
}

impl Object for RowObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = *self.view.index.get(key.as_str()?)?;
        Some(cell_value(self.view.columns[index].as_ref(), self.row))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_enumerator(|this| {
            Box::new(
                this.view
                    .names
                    .iter()
                    .map(|name| Value::from(name.as_str())),
            )
        })
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.view.names.len())
    }
}

/// The root context of a render: only `row`.
#[derive(Debug)]
struct RootContext {
    row: Value,
}

impl Object for RootContext {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "row").then(|| self.row.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["row"])
    }
}

/// The context for one row of a batch.
pub(crate) fn row_context(view: &Arc<BatchView>, row: usize) -> Value {
    let row = Value::from_object(RowObject {
        view: Arc::clone(view),
        row,
    });
    Value::from_object(RootContext { row })
}
