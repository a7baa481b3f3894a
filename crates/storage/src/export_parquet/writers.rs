//! The open partition files of the current day: rows are buffered per partition, handed to its
//! Parquet writer in batches, and partitions are closed under the `max_open` and memory budget
//! limits (see the parent module's docs). Separate from reading the sources, which only pushes
//! rows here.

use super::rows::{batch, row_bytes, Row};
use super::{io, ExportError, ExportOptions, ExportSummary, BATCH_ROWS};
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;

/// One open partition file.
pub(super) struct Part {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    rows: Vec<Row>,
    /// Approximate bytes of `rows`.
    rows_bytes: usize,
    /// Buffered bytes of the writer at its last write.
    mem: usize,
    last_used: u64,
}

/// The open partitions of the current day.
pub(super) struct Writers<'a> {
    pub(super) opts: &'a ExportOptions,
    pub(super) schema: SchemaRef,
    pub(super) props: WriterProperties,
    pub(super) day: String,
    pub(super) open: HashMap<(&'static str, String), Part>,
    /// Next `part-<n>` per partition of the day.
    pub(super) next_part: HashMap<(&'static str, String), u32>,
    pub(super) clock: u64,
    pub(super) mem: usize,
    pub(super) summary: ExportSummary,
}

impl Writers<'_> {
    pub(super) fn push(&mut self, stream: &'static str, symbol: &str, row: Row) -> Result<(), ExportError> {
        if self.opts.symbols.as_ref().is_some_and(|s| !s.contains(symbol)) {
            return Ok(());
        }
        self.clock += 1;
        let key = (stream, symbol.to_string());
        if !self.open.contains_key(&key) {
            self.open_part(&key)?;
        }
        let clock = self.clock;
        let bytes = row_bytes(&row);
        let full = match self.open.get_mut(&key) {
            Some(p) => {
                p.last_used = clock;
                p.rows.push(row);
                p.rows_bytes += bytes;
                self.mem += bytes;
                p.rows.len() >= BATCH_ROWS || self.mem > self.opts.memory_budget
            }
            None => false,
        };
        self.summary.partitions.entry((stream.to_string(), self.day.clone(), symbol.to_string())).or_default().rows +=
            1;
        if full {
            self.write_rows(&key)?;
        }
        Ok(())
    }

    fn open_part(&mut self, key: &(&'static str, String)) -> Result<(), ExportError> {
        while self.open.len() >= self.opts.max_open.max(1) {
            let Some(lru) = self.open.iter().min_by_key(|(_, p)| p.last_used).map(|(k, _)| k.clone()) else { break };
            self.close(&lru)?;
        }
        let n = self.next_part.entry(key.clone()).or_insert(0);
        let dir = self.opts.out.join(key.0).join(format!("day={}", self.day)).join(format!("symbol={}", key.1));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("part-{n}.parquet"));
        let tmp = dir.join(format!("part-{n}.parquet.tmp"));
        *n += 1;
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(self.props.clone()))
            .map_err(|source| ExportError::Parquet { path: tmp.clone(), source })?;
        self.open.insert(
            key.clone(),
            Part { writer, tmp, path, rows: Vec::new(), rows_bytes: 0, mem: 0, last_used: self.clock },
        );
        self.summary.partitions.entry((key.0.to_string(), self.day.clone(), key.1.clone())).or_default().files += 1;
        Ok(())
    }

    /// Hands a partition's buffered rows to its writer, then, while the rows and row groups in
    /// progress of all partitions hold more than the budget, writes out and flushes the largest.
    fn write_rows(&mut self, key: &(&'static str, String)) -> Result<(), ExportError> {
        self.write_part(key, false)?;
        while self.mem > self.opts.memory_budget {
            let Some(k) = self.open.iter().max_by_key(|(_, p)| p.mem + p.rows_bytes).map(|(k, _)| k.clone()) else {
                break;
            };
            let before = self.mem;
            self.write_part(&k, true)?;
            if self.mem >= before {
                break;
            }
        }
        Ok(())
    }

    /// Writes a partition's buffered rows as one batch; `flush` ends its row group too.
    fn write_part(&mut self, key: &(&'static str, String), flush: bool) -> Result<(), ExportError> {
        let Some(p) = self.open.get_mut(key) else { return Ok(()) };
        let err = |p: &Part| {
            let path = p.tmp.clone();
            move |source| ExportError::Parquet { path, source }
        };
        if !p.rows.is_empty() {
            let b = batch(&self.schema, &p.rows)?;
            p.rows.clear();
            self.mem = self.mem.saturating_sub(p.rows_bytes);
            p.rows_bytes = 0;
            p.writer.write(&b).map_err(err(p))?;
        }
        if flush {
            p.writer.flush().map_err(err(p))?;
        }
        let mem = p.writer.memory_size();
        self.mem = self.mem.saturating_sub(p.mem) + mem;
        p.mem = mem;
        Ok(())
    }

    fn close(&mut self, key: &(&'static str, String)) -> Result<(), ExportError> {
        self.write_part(key, false)?;
        let Some(p) = self.open.remove(key) else { return Ok(()) };
        self.mem = self.mem.saturating_sub(p.mem);
        p.writer.close().map_err(|source| ExportError::Parquet { path: p.tmp.clone(), source })?;
        std::fs::rename(&p.tmp, &p.path).map_err(io(&p.path))?;
        self.summary.files_written += 1;
        self.summary.bytes_written += std::fs::metadata(&p.path).map_err(io(&p.path))?.len();
        Ok(())
    }

    pub(super) fn close_all(&mut self) -> Result<(), ExportError> {
        let mut keys: Vec<_> = self.open.keys().cloned().collect();
        keys.sort();
        for k in keys {
            self.close(&k)?;
        }
        self.next_part.clear();
        Ok(())
    }
}
