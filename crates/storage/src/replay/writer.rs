//! [`RecordingWriter`]: the synchronous writer of recordings (import, fixtures, tests), in the
//! format [`super::RecordingReader`] reads. Kept apart from the reader: nothing is shared but the
//! file layout, which [`crate::segment`] and [`Paths`] define.

use scalper_core::config::paths::{DataKind, Paths};
use scalper_core::domain::TimeMs;
use scalper_core::engine::event::Event;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes recordings synchronously (import, fixtures, tests): one JSON line per event into
/// `<data>/raw/_global/<hour>.jsonl.zst` (zstd frames of about
/// [`crate::segment::FRAME_TARGET_BYTES`]; [`RecordingWriter::plain`]: `<hour>.jsonl`),
/// the hour being the running maximum of receive time so that the files, read in order, are in
/// `seq` order. The runtime's [`crate::recorder::Recorder`] writes the same format
/// through the async store.
pub struct RecordingWriter {
    paths: Paths,
    hour: String,
    file: Option<BufWriter<File>>,
    max_ts: TimeMs,
    written: u64,
    /// Lines of the next zstd frame; `None` when writing plain JSONL.
    frame: Option<Vec<u8>>,
}

impl RecordingWriter {
    /// A writer of compressed segments under `data_dir`.
    pub fn new(data_dir: &Path) -> RecordingWriter {
        RecordingWriter {
            paths: Paths::with_data_dir(data_dir),
            hour: String::new(),
            file: None,
            max_ts: TimeMs::MIN,
            written: 0,
            frame: Some(Vec::new()),
        }
    }

    /// A writer of plain `.jsonl` files (the format before compression; tests that edit lines).
    pub fn plain(data_dir: &Path) -> RecordingWriter {
        let mut w = RecordingWriter::new(data_dir);
        w.frame = None;
        w
    }

    /// Writes the gathered lines as one zstd frame.
    fn end_frame(&mut self) -> std::io::Result<()> {
        let (Some(frame), Some(f)) = (self.frame.as_mut(), self.file.as_mut()) else { return Ok(()) };
        if !frame.is_empty() {
            f.write_all(&crate::segment::compress_frame(frame)?)?;
            frame.clear();
        }
        Ok(())
    }

    /// Appends one event.
    pub fn write(&mut self, ev: &Event) -> std::io::Result<()> {
        self.max_ts = self.max_ts.max(ev.now_ms());
        let hour = crate::json_store::hour_key(self.max_ts);
        if self.file.is_none() || hour != self.hour {
            self.end_frame()?;
            if let Some(mut f) = self.file.take() {
                f.flush()?;
            }
            let path = match self.frame {
                Some(_) => crate::segment::stream_file(&self.paths, DataKind::Raw, None, &hour),
                None => self.paths.hourly_file(DataKind::Raw, None, &hour),
            };
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d)?;
            }
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            self.file = Some(BufWriter::with_capacity(1 << 20, f));
            self.hour = hour;
        }
        if let Some(frame) = self.frame.as_mut() {
            serde_json::to_writer(&mut *frame, ev).map_err(std::io::Error::other)?;
            frame.push(b'\n');
            self.written += 1;
            if frame.len() >= crate::segment::FRAME_TARGET_BYTES {
                self.end_frame()?;
            }
            return Ok(());
        }
        let Some(f) = self.file.as_mut() else { return Err(std::io::Error::other("recording file not open")) };
        serde_json::to_writer(&mut *f, ev).map_err(std::io::Error::other)?;
        f.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Events written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and closes.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.end_frame()?;
        if let Some(mut f) = self.file.take() {
            f.flush()?;
        }
        Ok(self.written)
    }
}

impl Drop for RecordingWriter {
    /// A writer dropped without [`RecordingWriter::finish`] still writes its last frame (errors
    /// cannot be reported here; `finish` reports them).
    fn drop(&mut self) {
        let _ = self.end_frame();
    }
}
