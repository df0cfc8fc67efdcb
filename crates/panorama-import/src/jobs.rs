//! Import jobs: an import started in the background whose progress and
//! report can be asked for while it runs. The table lives in memory: a
//! restart forgets it (what was written stays written; importing the file
//! again is idempotent), and only the most recent jobs are kept.

use crate::{
    FileFormat, ImportKind, ImportOptions, ImportReport, Phase, Progress, ProgressView, import,
};
use bytes::Bytes;
use panorama_core::Clock;
use panorama_ingest::Ingest;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Whether a job runs, finished or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Reading, checking or writing.
    Running,
    /// Finished: see the report (its outcome says whether anything was written).
    Done,
    /// Could not run (the store could not be read); nothing was written.
    Failed,
}

/// An import job as shown to its submitter.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// What the file holds.
    pub kind: ImportKind,
    /// How it is read.
    pub format: FileFormat,
    /// Who submitted it (`source:<id>` or `user:<name>`).
    pub submitted_by: String,
    /// The file's name, when the submitter gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Running, done or failed.
    pub status: JobStatus,
    /// When it was submitted.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Rows read and written so far.
    pub progress: ProgressView,
    /// The report, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ImportReport>,
    /// Why the job failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug)]
struct Job {
    view: JobView,
    progress: Arc<Progress>,
}

/// Why a job was not started.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// Too many imports run at once.
    #[error("{0} imports are running already; retry when one has finished")]
    Busy(usize),
}

/// The in-memory table of import jobs.
#[derive(Debug, Clone)]
pub struct Jobs {
    jobs: Arc<Mutex<VecDeque<Job>>>,
    next: Arc<AtomicU64>,
    max_running: usize,
    keep: usize,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new(2, 200)
    }
}

impl Jobs {
    /// A table running at most `max_running` imports at once and keeping
    /// the last `keep` jobs.
    pub fn new(max_running: usize, keep: usize) -> Self {
        Self {
            jobs: Arc::default(),
            next: Arc::new(AtomicU64::new(1)),
            max_running: max_running.max(1),
            keep: keep.max(1),
        }
    }

    /// Starts an import in the background and returns its job.
    pub fn start(
        &self,
        ingest: Ingest,
        clock: Arc<dyn Clock>,
        data: Bytes,
        opts: ImportOptions,
    ) -> Result<JobView, JobsError> {
        let now = clock.now();
        let progress = Arc::new(Progress::default());
        let view = {
            let Ok(mut jobs) = self.jobs.lock() else {
                return Err(JobsError::Busy(0));
            };
            let running = jobs
                .iter()
                .filter(|j| j.view.status == JobStatus::Running)
                .count();
            if running >= self.max_running {
                return Err(JobsError::Busy(running));
            }
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let view = JobView {
                id: format!("{}-{n}", now.format("%Y%m%dT%H%M%S")),
                kind: opts.kind,
                format: opts.format,
                submitted_by: opts.submitted_by.clone(),
                file_name: opts.file_name.clone(),
                status: JobStatus::Running,
                created_at: now,
                finished_at: None,
                progress: progress.view(),
                report: None,
                error: None,
            };
            while jobs.len() >= self.keep {
                // Forget the oldest finished job; running ones stay.
                match jobs
                    .iter()
                    .position(|j| j.view.status != JobStatus::Running)
                {
                    Some(i) => {
                        jobs.remove(i);
                    }
                    None => break,
                }
            }
            jobs.push_back(Job {
                view: view.clone(),
                progress: progress.clone(),
            });
            view
        };
        let me = self.clone();
        let id = view.id.clone();
        tokio::spawn(async move {
            let result = import(&ingest, clock.clone(), data, &opts, progress).await;
            if let Err(e) = &result {
                tracing::warn!(job = %id, error = %e, "import failed");
            }
            if let Ok(mut jobs) = me.jobs.lock()
                && let Some(j) = jobs.iter_mut().find(|j| j.view.id == id)
            {
                j.view.finished_at = Some(clock.now());
                match result {
                    Ok(report) => {
                        j.view.status = JobStatus::Done;
                        j.view.report = Some(report);
                    }
                    Err(e) => {
                        j.view.status = JobStatus::Failed;
                        j.view.error = Some(e.to_string());
                    }
                }
            }
        });
        Ok(view)
    }

    /// A job with its current progress.
    pub fn get(&self, id: &str) -> Option<JobView> {
        let jobs = self.jobs.lock().ok()?;
        let j = jobs.iter().find(|j| j.view.id == id)?;
        let mut view = j.view.clone();
        view.progress = j.progress.view();
        if view.status != JobStatus::Running {
            view.progress.phase = Phase::Done;
        }
        Some(view)
    }

    /// The jobs submitted by `submitted_by` (every job when `None`), newest first.
    pub fn list(&self, submitted_by: Option<&str>) -> Vec<JobView> {
        let Ok(jobs) = self.jobs.lock() else {
            return Vec::new();
        };
        jobs.iter()
            .rev()
            .filter(|j| submitted_by.is_none_or(|s| j.view.submitted_by == s))
            .map(|j| {
                let mut v = j.view.clone();
                v.progress = j.progress.view();
                // Lists stay small: the full report is on the job itself.
                if let Some(r) = &mut v.report {
                    r.errors.truncate(10);
                }
                v
            })
            .collect()
    }
}
