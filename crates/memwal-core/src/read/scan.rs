//! Projection, filter, offset and limit over a sequence of batches: the
//! part of a scan that does not care where the rows came from.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

use super::filter::Filter;
use crate::error::{Error, Result};

/// What a caller asks of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanRequest {
    /// Columns to return, in this order; `None` = all.
    pub columns: Option<Vec<String>>,
    /// A SQL-like condition (see [`Filter`]).
    pub filter: Option<String>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// A checked request, ready to run over batches of `schema`.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    filter: Option<Filter>,
    projection: Vec<usize>,
    output: SchemaRef,
    limit: Option<usize>,
    offset: usize,
}

impl ScanPlan {
    pub fn new(schema: &Schema, request: &ScanRequest) -> Result<Self> {
        let projection = match &request.columns {
            None => (0..schema.fields().len()).collect(),
            Some(columns) => columns
                .iter()
                .map(|name| {
                    schema.index_of(name).map_err(|_| {
                        let known: Vec<&str> =
                            schema.fields().iter().map(|f| f.name().as_str()).collect();
                        Error::invalid_input(format!(
                            "unknown column '{name}' in columns; known columns: {}",
                            known.join(", ")
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let filter = request
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(|sql| Filter::parse(sql, schema))
            .transpose()?;
        let output = Arc::new(schema.project(&projection)?);
        Ok(Self {
            filter,
            projection,
            output,
            limit: request.limit,
            offset: request.offset,
        })
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    pub fn filter(&self) -> Option<&Filter> {
        self.filter.as_ref()
    }

    /// Filter and project one batch, ignoring offset and limit (the caller
    /// counts those across batches); `None` when no row passes.
    pub fn run_unbounded(&self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        let kept = match &self.filter {
            Some(filter) => filter.apply(batch)?,
            None => batch.clone(),
        };
        if kept.num_rows() == 0 {
            return Ok(None);
        }
        let projected = kept.project(&self.projection)?;
        Ok(Some(RecordBatch::try_new(
            self.output.clone(),
            projected.columns().to_vec(),
        )?))
    }

    /// Run the plan over `batches` (all of the plan's input schema).
    pub fn run<'a>(
        &self,
        batches: impl IntoIterator<Item = &'a RecordBatch>,
    ) -> Result<Vec<RecordBatch>> {
        let mut window = self.window();
        let mut out = Vec::new();
        for batch in batches {
            if window.is_full() {
                break;
            }
            if let Some(kept) = self.run_unbounded(batch)? {
                out.extend(window.take(kept));
            }
        }
        Ok(out)
    }

    /// The plan's offset and limit, to count across batches.
    pub fn window(&self) -> RowWindow {
        RowWindow {
            skip: self.offset,
            remaining: self.limit.unwrap_or(usize::MAX),
        }
    }
}

/// Offset and limit counted across a sequence of result batches.
#[derive(Debug, Clone)]
pub struct RowWindow {
    skip: usize,
    remaining: usize,
}

impl RowWindow {
    /// No further row can be returned.
    pub fn is_full(&self) -> bool {
        self.remaining == 0
    }

    /// The rows of `batch` inside the window (`None` if all are skipped or
    /// the limit is reached), advancing it.
    pub fn take(&mut self, batch: RecordBatch) -> Option<RecordBatch> {
        let rows = batch.num_rows();
        if rows <= self.skip || self.remaining == 0 {
            self.skip -= rows.min(self.skip);
            return None;
        }
        let take = (rows - self.skip).min(self.remaining);
        let out = batch.slice(self.skip, take);
        self.skip = 0;
        self.remaining -= take;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    fn batches() -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        (0..3)
            .map(|b| {
                let ids: Vec<i64> = (b * 10..b * 10 + 10).collect();
                let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(ids)),
                        Arc::new(StringArray::from(names)),
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                b.column_by_name("id")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn filter_offset_and_limit_cross_batches() {
        let input = batches();
        let request = ScanRequest {
            filter: Some("id >= 5 AND id < 25".into()),
            offset: 3,
            limit: Some(10),
            ..Default::default()
        };
        let plan = ScanPlan::new(&input[0].schema(), &request).unwrap();
        assert_eq!(ids(&plan.run(&input).unwrap()), (8..18).collect::<Vec<_>>());
    }

    #[test]
    fn projection_keeps_the_requested_order() {
        let input = batches();
        let request = ScanRequest {
            columns: Some(vec!["name".into(), "id".into()]),
            limit: Some(1),
            ..Default::default()
        };
        let plan = ScanPlan::new(&input[0].schema(), &request).unwrap();
        let out = plan.run(&input).unwrap();
        assert_eq!(plan.output_schema().field(0).name(), "name");
        assert_eq!(out[0].num_rows(), 1);
        assert_eq!(out[0].num_columns(), 2);
    }

    #[test]
    fn unknown_columns_and_bad_filters_are_invalid_input() {
        let schema = batches()[0].schema();
        for request in [
            ScanRequest {
                columns: Some(vec!["nope".into()]),
                ..Default::default()
            },
            ScanRequest {
                filter: Some("id >".into()),
                ..Default::default()
            },
            ScanRequest {
                filter: Some("nmae = 'x'".into()),
                ..Default::default()
            },
        ] {
            let err = ScanPlan::new(&schema, &request).unwrap_err();
            assert_eq!(err.code(), crate::error::ErrorCode::InvalidInput, "{err}");
        }
    }
}
