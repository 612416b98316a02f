//! [`Table`]: one entity's records by id with their JSON.

use serde::Serialize;

/// A record with its JSON, kept in step so listings do not serialise on every read.
pub(crate) struct Row<T> {
    pub(crate) rec: T,
    pub(crate) json: serde_json::Value,
}

/// One entity's records by id (ordered, so paging by id is a range), and the next id to give.
pub(crate) struct Table<T> {
    pub(crate) rows: std::collections::BTreeMap<i64, Row<T>>,
    pub(crate) next_id: i64,
}

impl<T: Serialize> Table<T> {
    pub(crate) fn new(first_id: i64) -> Self {
        Table {
            rows: std::collections::BTreeMap::new(),
            next_id: first_id,
        }
    }
    pub(crate) fn alloc(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
    pub(crate) fn put(&mut self, id: i64, rec: T) {
        let json = serde_json::to_value(&rec).expect("record serializes");
        self.rows.insert(id, Row { rec, json });
    }
    pub(crate) fn get(&self, id: i64) -> Option<&T> {
        self.rows.get(&id).map(|r| &r.rec)
    }
    /// Mutates a record and refreshes its JSON.
    pub(crate) fn modify(&mut self, id: i64, f: impl FnOnce(&mut T)) -> bool {
        match self.rows.get_mut(&id) {
            Some(row) => {
                f(&mut row.rec);
                row.json = serde_json::to_value(&row.rec).expect("record serializes");
                true
            }
            None => false,
        }
    }
}
