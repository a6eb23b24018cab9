//! The model's part of a snapshot: every model table exported as a stream of
//! records from one read transaction, and imported again into empty tables.
//!
//! A record on the wire is `table: u8 | key length: u32 LE | key | value
//! length: u32 LE | value`, where `table` indexes [`tables::ALL`]. The raft
//! layer frames its own metadata around these records; nothing here touches
//! tables outside [`tables::ALL`].

use std::io::{self, Read, Write};

use redb::{ReadTransaction, WriteTransaction};

use crate::error::MetaError;
use crate::listing::RawReadTable;
use crate::tables;

/// One key/value pair of one model table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Index of the table in [`tables::ALL`].
    pub table: u8,
    /// Encoded key.
    pub key: Vec<u8>,
    /// Encoded value.
    pub value: Vec<u8>,
}

impl SnapshotRecord {
    /// Write the record in its wire form.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&[self.table])?;
        for bytes in [&self.key, &self.value] {
            let len = u32::try_from(bytes.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "record too large"))?;
            w.write_all(&len.to_le_bytes())?;
            w.write_all(bytes)?;
        }
        Ok(())
    }

    /// Read one record; `Ok(None)` at a clean end of input.
    pub fn read_from(r: &mut impl Read) -> Result<Option<SnapshotRecord>, MetaError> {
        let mut table = [0u8; 1];
        match r.read_exact(&mut table) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if usize::from(table[0]) >= tables::ALL.len() {
            return Err(MetaError::Encoding(format!(
                "snapshot record names unknown table {}",
                table[0]
            )));
        }
        let key = read_chunk(r)?;
        let value = read_chunk(r)?;
        Ok(Some(SnapshotRecord {
            table: table[0],
            key,
            value,
        }))
    }
}

fn read_chunk(r: &mut impl Read) -> Result<Vec<u8>, MetaError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    let mut buf = Vec::new();
    r.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() != len {
        return Err(MetaError::Encoding("truncated snapshot record".into()));
    }
    Ok(buf)
}

/// Streams every record of every model table, table by table, in key order.
pub struct SnapshotExport {
    tables: Vec<RawReadTable>,
    table: usize,
    range: Option<redb::Range<'static, &'static [u8], &'static [u8]>>,
}

/// Start exporting the model tables of `txn` (which must have them, see
/// [`tables::create_all`]). The iterator holds the read transaction's
/// snapshot alive until it is dropped.
pub fn export(txn: &ReadTransaction) -> Result<SnapshotExport, MetaError> {
    let tables = tables::ALL
        .iter()
        .map(|t| txn.open_table(*t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SnapshotExport {
        tables,
        table: 0,
        range: None,
    })
}

impl SnapshotExport {
    fn next_record(&mut self) -> Result<Option<SnapshotRecord>, MetaError> {
        loop {
            let Some(table) = self.tables.get(self.table) else {
                return Ok(None);
            };
            let range = match &mut self.range {
                Some(range) => range,
                None => self.range.insert(table.range::<&[u8]>(..)?),
            };
            match range.next() {
                Some(entry) => {
                    let (k, v) = entry?;
                    return Ok(Some(SnapshotRecord {
                        // ALL has fewer than 256 tables.
                        table: self.table as u8,
                        key: k.value().to_vec(),
                        value: v.value().to_vec(),
                    }));
                }
                None => {
                    self.range = None;
                    self.table += 1;
                }
            }
        }
    }
}

impl Iterator for SnapshotExport {
    type Item = Result<SnapshotRecord, MetaError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Delete every model table and create them again, empty (before an import
/// on a member that already holds state).
pub fn clear_all(txn: &WriteTransaction) -> Result<(), MetaError> {
    for table in tables::ALL {
        txn.delete_table(table)?;
    }
    tables::create_all(txn)
}

/// Insert records into the (empty) model tables of `txn`; returns how many.
pub fn import(
    txn: &WriteTransaction,
    records: impl IntoIterator<Item = Result<SnapshotRecord, MetaError>>,
) -> Result<u64, MetaError> {
    let mut opened = tables::ALL
        .iter()
        .map(|t| txn.open_table(*t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut count = 0;
    for record in records {
        let record = record?;
        let table = opened.get_mut(usize::from(record.table)).ok_or_else(|| {
            MetaError::Encoding(format!(
                "snapshot record names unknown table {}",
                record.table
            ))
        })?;
        table.insert(record.key.as_slice(), record.value.as_slice())?;
        count += 1;
    }
    Ok(count)
}
