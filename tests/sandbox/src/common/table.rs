//! [`Table`]: the one record store every entity of every fake lives in.
//!
//! A table keeps one entity's records by id (ordered, so paging by id is a range) together with
//! their JSON (kept in step, so listings never serialise on a read), the next id to give, and an
//! index of child records by parent id (an agreement's additions, a contract's services, a
//! contract service's units). The fakes reach records only through its methods; [`Record`]
//! lets it stamp and number records generically, and [`JsonRows`] lets one entity-keyed lookup
//! serve every listing without knowing the record type.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// A record a [`Table`] can number and stamp (see [`impl_record!`]).
pub(crate) trait Record: Serialize {
    fn set_id(&mut self, id: i64);
    /// Marks the record as changed at `now` (its vendor's "last updated" field).
    fn touch(&mut self, now: DateTime<Utc>);
}

/// Implements [`Record`] for records with an `id: i64` field; `touch` is written as
/// `Type: |record, now| stamp;`.
macro_rules! impl_record {
    ($($t:ty: |$r:ident, $now:ident| $touch:expr;)*) => {$(
        impl $crate::common::Record for $t {
            fn set_id(&mut self, id: i64) {
                self.id = id;
            }
            fn touch(&mut self, $now: chrono::DateTime<chrono::Utc>) {
                let $r = self;
                $touch;
            }
        }
    )*};
}
pub(crate) use impl_record;

/// A record with its JSON, kept in step so listings do not serialise on every read.
struct Row<T> {
    rec: T,
    json: Value,
}

/// One entity's records by id, the next id to give, and child links `(parent id, id)`.
pub(crate) struct Table<T> {
    rows: BTreeMap<i64, Row<T>>,
    next_id: i64,
    parents: BTreeSet<(i64, i64)>,
}

fn to_json<T: Serialize>(rec: &T) -> Value {
    serde_json::to_value(rec).expect("record serializes")
}

impl<T: Serialize> Table<T> {
    pub(crate) fn new(first_id: i64) -> Self {
        Table {
            rows: BTreeMap::new(),
            next_id: first_id,
            parents: BTreeSet::new(),
        }
    }
    pub(crate) fn alloc(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
    /// Stores (or replaces) the record under `id`.
    pub(crate) fn put(&mut self, id: i64, rec: T) {
        let json = to_json(&rec);
        self.rows.insert(id, Row { rec, json });
    }
    /// Stores the record `make` builds for the next id; returns that id.
    pub(crate) fn insert(&mut self, make: impl FnOnce(i64) -> T) -> i64 {
        let id = self.alloc();
        self.put(id, make(id));
        id
    }
    pub(crate) fn get(&self, id: i64) -> Option<&T> {
        self.rows.get(&id).map(|r| &r.rec)
    }
    pub(crate) fn json(&self, id: i64) -> Option<&Value> {
        self.rows.get(&id).map(|r| &r.json)
    }
    /// All records, by id.
    pub(crate) fn records(&self) -> impl Iterator<Item = &T> + '_ {
        self.rows.values().map(|r| &r.rec)
    }
    /// `(id, JSON)` of the records with ids in `range`, by id.
    pub(crate) fn json_range(
        &self,
        range: (Bound<i64>, Bound<i64>),
    ) -> impl DoubleEndedIterator<Item = (i64, &Value)> + '_ {
        self.rows.range(range).map(|(id, r)| (*id, &r.json))
    }
    /// Mutates a record and refreshes its JSON; false for an unknown id.
    pub(crate) fn modify(&mut self, id: i64, f: impl FnOnce(&mut T)) -> bool {
        match self.rows.get_mut(&id) {
            Some(row) => {
                f(&mut row.rec);
                row.json = to_json(&row.rec);
                true
            }
            None => false,
        }
    }
    /// Mutates every record `pick` selects (refreshing their JSON).
    pub(crate) fn modify_where(&mut self, pick: impl Fn(&T) -> bool, mut f: impl FnMut(&mut T)) {
        for row in self.rows.values_mut().filter(|r| pick(&r.rec)) {
            f(&mut row.rec);
            row.json = to_json(&row.rec);
        }
    }
    /// Mutates every record (refreshing their JSON).
    pub(crate) fn modify_all(&mut self, f: impl FnMut(&mut T)) {
        self.modify_where(|_| true, f)
    }
    pub(crate) fn remove(&mut self, id: i64) -> bool {
        self.rows.remove(&id).is_some()
    }

    // --- child records ---------------------------------------------------------------------

    /// Records `id` as a child of `parent`.
    pub(crate) fn link(&mut self, parent: i64, id: i64) {
        self.parents.insert((parent, id));
    }
    pub(crate) fn is_child(&self, parent: i64, id: i64) -> bool {
        self.parents.contains(&(parent, id))
    }
    /// Ids of `parent`'s children from `start` on, by id.
    pub(crate) fn child_ids_from(
        &self,
        parent: i64,
        start: i64,
    ) -> impl DoubleEndedIterator<Item = i64> + '_ {
        self.parents
            .range((parent, start)..=(parent, i64::MAX))
            .map(|(_, id)| *id)
    }
    /// Ids of `parent`'s children, by id.
    pub(crate) fn child_ids(&self, parent: i64) -> impl DoubleEndedIterator<Item = i64> + '_ {
        self.child_ids_from(parent, i64::MIN)
    }
    /// `parent`'s child records, by id.
    pub(crate) fn children(&self, parent: i64) -> impl Iterator<Item = &T> + '_ {
        self.child_ids(parent).filter_map(|id| self.get(id))
    }
    /// Removes a child record; false if `id` is not a child of `parent`.
    pub(crate) fn remove_child(&mut self, parent: i64, id: i64) -> bool {
        let linked = self.parents.remove(&(parent, id));
        if linked {
            self.rows.remove(&id);
        }
        linked
    }
}

impl<T: Record> Table<T> {
    /// Stores `rec` under `id` (a new id when `None`), numbered and stamped at `now`; returns
    /// the id.
    pub(crate) fn save(&mut self, id: Option<i64>, mut rec: T, now: DateTime<Utc>) -> i64 {
        let id = id.unwrap_or_else(|| self.alloc());
        rec.set_id(id);
        rec.touch(now);
        self.put(id, rec);
        id
    }
    /// Changes a record and stamps it at `now`; false for an unknown id.
    pub(crate) fn update(&mut self, id: i64, now: DateTime<Utc>, f: impl FnOnce(&mut T)) -> bool {
        self.modify(id, |r| {
            f(r);
            r.touch(now);
        })
    }
}

/// The JSON side of a [`Table`] without its record type, so that one `match` from an entity to
/// its table serves every read of a fake.
pub(crate) trait JsonRows {
    fn json(&self, id: i64) -> Option<&Value>;
    fn json_range(
        &self,
        range: (Bound<i64>, Bound<i64>),
    ) -> Box<dyn DoubleEndedIterator<Item = (i64, &Value)> + '_>;
}

impl<T: Serialize> JsonRows for Table<T> {
    fn json(&self, id: i64) -> Option<&Value> {
        Table::json(self, id)
    }
    fn json_range(
        &self,
        range: (Bound<i64>, Bound<i64>),
    ) -> Box<dyn DoubleEndedIterator<Item = (i64, &Value)> + '_> {
        Box::new(Table::json_range(self, range))
    }
}
