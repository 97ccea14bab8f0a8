//! The `decide` message a Python scheduler receives in-process: the dict `json.loads` makes of
//! the wire protocol's line (`spec/PROTOCOL.md`), with its two long lists, `waiting` and
//! `running`, built lazily.
//!
//! Per decision the battery's scenarios hand a scheduler tens of waiting and running requests,
//! and building one dict per request was most of the in-process transport (BENCHMARKS.md,
//! "Python package"). So `msg["waiting"]` and `msg["running"]` are [`Requests`]: read-only
//! sequences that build a request's dict the first time it is read (by index or iteration),
//! and keep it, so a scheduler that reads the first few waiting requests pays for those only.
//! They support what schedulers do with the lists: iteration, `len`, indexing and slicing,
//! `in`, `reversed`, `==` against a list, `+` (giving a list), `copy`/`pickle` (giving a
//! list); any other list method (`sort`, `pop`, `append`, ...) first builds every entry, then
//! acts on the sequence's own list, which every later read sees. `json.dumps` does not take
//! them (`json.dumps(msg, default=list)` does).
//!
//! Every request dict is the scheduler's own: a copy of a per-run cache ([`ReqCache`]), so a
//! scheduler may mutate what it receives, as it may a message parsed from JSON
//! (`tests/test_conform.py` checks both this and that the messages equal the stdio ones).

use kvsched::protocol::wire::{Decide, Req, Res};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError};
use pyo3::gc::{PyTraverseError, PyVisit};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyDict, PyList, PySlice};
use std::sync::{Arc, Mutex};

/// Ids past this are never cached (ids are dense, numbered in arrival order, so the cache
/// grows with the run).
const CACHE_IDS: usize = 1 << 21;

/// Each request's own fields (`id`, `arrival`, `prompt`, `class`, `known`, `predicted`), which
/// never change during a run, as a dict built once and copied into every message (a C-level
/// dict copy, several times cheaper than building it field by field); and for a resident
/// request, the same with its residency's fields (`prefilled`, `generated`, `held`, `seq`) as
/// last shown, so a message's copy only overwrites their values (no dict resize). Indexed by
/// id (ids are dense); a completed request's entries are dropped. A request resumed with kept
/// tokens (`keep_generated`) shows other fields each time: never cached. Shared by a run and
/// the messages it made (which a scheduler may keep).
#[derive(Clone, Default)]
pub(crate) struct ReqCache(Arc<Mutex<Slots>>);

#[derive(Default)]
struct Slots {
    own: Vec<Option<Py<PyDict>>>,
    resident: Vec<Option<Py<PyDict>>>,
}

fn slot_of(v: &[Option<Py<PyDict>>], py: Python<'_>, i: usize) -> Option<Py<PyDict>> {
    v.get(i).and_then(|x| x.as_ref().map(|d| d.clone_ref(py)))
}

fn store(v: &mut Vec<Option<Py<PyDict>>>, i: usize, d: Py<PyDict>) {
    if v.len() <= i {
        v.resize_with(i + 1, || None);
    }
    v[i] = Some(d);
}

impl ReqCache {
    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh dict of `r`'s own fields. The lock is never held while Python allocates.
    fn dict<'py>(&self, py: Python<'py>, r: &Req) -> PyResult<Bound<'py, PyDict>> {
        let slot = r.id as usize;
        let cached = r.kept == 0 && slot <= CACHE_IDS;
        if cached {
            if let Some(x) = slot_of(&self.slots().own, py, slot) {
                return x.bind(py).copy();
            }
        }
        let x = PyDict::new(py);
        x.set_item(intern!(py, "id"), r.id)?;
        x.set_item(intern!(py, "arrival"), r.arrival)?;
        x.set_item(intern!(py, "prompt"), r.prompt)?;
        x.set_item(intern!(py, "class"), r.class)?;
        if let Some(k) = r.known {
            x.set_item(intern!(py, "known"), k)?;
        }
        if let Some(p) = r.predicted {
            x.set_item(intern!(py, "predicted"), p)?;
        }
        if r.kept > 0 {
            x.set_item(intern!(py, "kept"), r.kept)?;
        }
        if !cached {
            return Ok(x);
        }
        let copy = x.copy()?;
        store(&mut self.slots().own, slot, x.unbind());
        Ok(copy)
    }

    /// A fresh dict of resident request `r`.
    fn resident<'py>(&self, py: Python<'py>, r: &Res) -> PyResult<Bound<'py, PyDict>> {
        let slot = r.id as usize;
        let cached = r.kept == 0 && slot <= CACHE_IDS;
        let hit = if cached { slot_of(&self.slots().resident, py, slot) } else { None };
        let (x, fresh) = match hit {
            Some(t) => (t.bind(py).copy()?, false),
            None => (self.dict(py, &req_of(r))?, true),
        };
        x.set_item(intern!(py, "prefilled"), r.prefilled)?;
        x.set_item(intern!(py, "generated"), r.generated)?;
        x.set_item(intern!(py, "held"), r.held)?;
        x.set_item(intern!(py, "seq"), r.seq)?;
        if cached && fresh {
            let template = x.copy()?.unbind();
            store(&mut self.slots().resident, slot, template);
        }
        Ok(x)
    }

    /// Drops the entries of requests that completed.
    fn forget(&self, ids: impl Iterator<Item = u32>) {
        let mut slots = self.slots();
        let Slots { own, resident } = &mut *slots;
        for id in ids {
            for v in [&mut *own, &mut *resident] {
                if let Some(s) = v.get_mut(id as usize) {
                    *s = None;
                }
            }
        }
    }
}

fn req_of(r: &Res) -> Req {
    Req {
        id: r.id,
        arrival: r.arrival,
        prompt: r.prompt,
        class: r.class,
        known: r.known,
        predicted: r.predicted,
        kept: r.kept,
    }
}

/// The rows behind a [`Requests`].
enum Rows {
    Waiting(Vec<Req>),
    Running(Vec<Res>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Waiting(v) => v.len(),
            Rows::Running(v) => v.len(),
        }
    }

    /// The wire protocol's dict of row `i`.
    fn dict<'py>(
        &self,
        py: Python<'py>,
        cache: &ReqCache,
        i: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        match self {
            Rows::Waiting(v) => cache.dict(py, &v[i]),
            Rows::Running(v) => cache.resident(py, &v[i]),
        }
    }
}

/// `msg["waiting"]` or `msg["running"]`: a list of request dicts, each built when first read
/// (see the module documentation).
#[pyclass(module = "kvsched", name = "Requests", sequence)]
pub(crate) struct Requests {
    rows: Rows,
    cache: ReqCache,
    /// One entry per row, `None` until built; once `whole`, the list itself (a list method
    /// may have changed it).
    items: Py<PyList>,
    whole: bool,
}

impl Requests {
    fn new(py: Python<'_>, rows: Rows, cache: &ReqCache) -> PyResult<Self> {
        let items = PyList::new(py, (0..rows.len()).map(|_| py.None()))?.unbind();
        Ok(Requests { whole: rows.len() == 0, rows, cache: cache.clone(), items })
    }

    /// Entry `i` (< the length), built if it was not.
    fn item<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let items = self.items.bind(py);
        let x = items.get_item(i)?;
        if self.whole || !x.is_none() {
            return Ok(x);
        }
        let d = self.rows.dict(py, &self.cache, i)?.into_any();
        items.set_item(i, &d)?;
        Ok(d)
    }

    /// Builds every entry; from then on the sequence is its list.
    fn whole<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let mut me = slf
            .try_borrow_mut()
            .map_err(|_| PyRuntimeError::new_err("Requests: in use (re-entered)"))?;
        if !me.whole {
            for i in 0..me.rows.len() {
                me.item(py, i)?;
            }
            me.whole = true;
        }
        Ok(me.items.bind(py).clone())
    }

    fn list_of<'py>(x: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyList>>> {
        if let Ok(r) = x.cast::<Requests>() {
            return Requests::whole(r).map(Some);
        }
        Ok(x.cast::<PyList>().ok().cloned())
    }

    /// A binary operation with a list or another `Requests`, on the lists; `NotImplemented`
    /// with anything else (so Python tries the other operand, as it does for a list).
    fn binary<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        op: impl FnOnce(Bound<'py, PyList>, Bound<'py, PyList>) -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let mine = Requests::whole(slf)?;
        match Requests::list_of(other)? {
            Some(theirs) => Ok(op(mine, theirs)?.unbind()),
            None => Ok(slf.py().NotImplemented()),
        }
    }
}

#[pymethods]
impl Requests {
    fn __len__(&self, py: Python<'_>) -> usize {
        self.items.bind(py).len()
    }

    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        if let Ok(i) = index.extract::<isize>() {
            let me = slf.borrow();
            let n = me.items.bind(py).len() as isize;
            let j = if i < 0 { i + n } else { i };
            if !(0..n).contains(&j) {
                return Err(PyIndexError::new_err("list index out of range"));
            }
            return me.item(py, j as usize);
        }
        if index.is_instance_of::<PySlice>() {
            return Requests::whole(slf)?.as_any().get_item(index);
        }
        Err(PyTypeError::new_err(format!(
            "list indices must be integers or slices, not {}",
            index.get_type().name()?
        )))
    }

    fn __setitem__(
        slf: &Bound<'_, Self>,
        index: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        Requests::whole(slf)?.as_any().set_item(index, value)
    }

    fn __delitem__(slf: &Bound<'_, Self>, index: &Bound<'_, PyAny>) -> PyResult<()> {
        Requests::whole(slf)?.as_any().del_item(index)
    }

    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.borrow();
        if me.whole {
            return Ok(me.items.bind(py).try_iter()?.into_any().unbind());
        }
        Ok(Py::new(py, RequestsIter { seq: slf.clone().unbind(), next: 0 })?.into_any())
    }

    fn __reversed__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Requests::whole(slf)?.call_method0(intern!(slf.py(), "__reversed__"))
    }

    fn __contains__(slf: &Bound<'_, Self>, x: &Bound<'_, PyAny>) -> PyResult<bool> {
        Requests::whole(slf)?.contains(x)
    }

    fn __richcmp__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        Requests::binary(slf, other, |mine, theirs| mine.rich_compare(theirs, op))
    }

    fn __add__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        Requests::binary(slf, other, |mine, theirs| mine.as_any().add(theirs))
    }

    fn __radd__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        Requests::binary(slf, other, |mine, theirs| theirs.as_any().add(mine))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        Ok(Requests::whole(slf)?.repr()?.to_string())
    }

    /// Pickled and copied (`copy.copy`, `copy.deepcopy`) as a list.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let list = py.get_type::<PyList>().into_any();
        (list, (Requests::whole(slf)?,)).into_pyobject(py).map(|t| t.into_any())
    }

    /// Any other attribute is the list's (`sort`, `pop`, `index`, `copy`, ...), after every
    /// entry is built.
    fn __getattr__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, pyo3::types::PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Requests::whole(slf)?.as_any().getattr(name)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.items)
    }
}

/// The iterator of a [`Requests`] not yet whole: builds each entry as it goes.
#[pyclass(module = "kvsched")]
struct RequestsIter {
    seq: Py<Requests>,
    next: usize,
}

#[pymethods]
impl RequestsIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let seq = self.seq.bind(py).borrow();
        if self.next >= seq.items.bind(py).len() {
            return Ok(None);
        }
        let x = seq.item(py, self.next)?;
        self.next += 1;
        Ok(Some(x))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.seq)
    }
}

/// The `decide` message `d` as the dict `json.loads` makes of its line (built directly, with
/// interned keys: this is the hot path), `waiting` and `running` as [`Requests`].
pub(crate) fn decide_dict<'py>(
    py: Python<'py>,
    d: Decide,
    cache: &ReqCache,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item(intern!(py, "type"), intern!(py, "decide"))?;
    out.set_item(intern!(py, "seq"), d.seq)?;
    out.set_item(intern!(py, "t"), d.t)?;
    out.set_item(intern!(py, "kv_used"), d.kv_used)?;
    out.set_item(intern!(py, "kv_capacity"), d.kv_capacity)?;
    out.set_item(intern!(py, "steps"), d.steps)?;
    out.set_item(intern!(py, "ran"), d.ran)?;
    out.set_item(intern!(py, "arrivals_done"), d.arrivals_done)?;
    let arrived = d.arrived.iter().map(|r| cache.dict(py, r)).collect::<PyResult<Vec<_>>>()?;
    out.set_item(intern!(py, "arrived"), PyList::new(py, arrived)?)?;
    if let Some(w) = d.waiting {
        out.set_item(intern!(py, "waiting"), Requests::new(py, Rows::Waiting(w), cache)?)?;
    }
    let done = d
        .completed
        .iter()
        .map(|c| {
            let x = PyDict::new(py);
            x.set_item(intern!(py, "id"), c.id)?;
            x.set_item(intern!(py, "output"), c.output)?;
            x.set_item(intern!(py, "finish"), c.finish)?;
            Ok(x)
        })
        .collect::<PyResult<Vec<_>>>()?;
    out.set_item(intern!(py, "completed"), PyList::new(py, done)?)?;
    if let Some(r) = d.running {
        out.set_item(intern!(py, "running"), Requests::new(py, Rows::Running(r), cache)?)?;
    }
    cache.forget(d.completed.iter().map(|c| c.id));
    Ok(out)
}
