//! Primary-key columns, declared through Lance's field metadata.

use arrow_schema::Schema;

/// Field metadata key that marks a primary-key column (value true/1/yes).
pub const PRIMARY_KEY_METADATA: &str = "lance-schema:unenforced-primary-key";
/// Optional 1-based order of a column within a composite key.
pub const PRIMARY_KEY_POSITION_METADATA: &str = "lance-schema:unenforced-primary-key:position";

fn is_marked(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes"
    )
}

/// The primary-key columns of `schema` in key order: by their position
/// metadata where given, otherwise in field order.
pub fn primary_key_columns(schema: &Schema) -> Vec<String> {
    let mut keyed: Vec<(u64, usize, String)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.metadata()
                .get(PRIMARY_KEY_METADATA)
                .is_some_and(|v| is_marked(v))
        })
        .map(|(index, f)| {
            let position = f
                .metadata()
                .get(PRIMARY_KEY_POSITION_METADATA)
                .and_then(|p| p.trim().parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            (position, index, f.name().clone())
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, _, name)| name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field};
    use std::collections::HashMap;

    fn field(name: &str, meta: &[(&str, &str)]) -> Field {
        Field::new(name, DataType::Int64, false).with_metadata(
            meta.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn marked_fields_in_position_then_field_order() {
        let schema = Schema::new(vec![
            field("a", &[(PRIMARY_KEY_METADATA, "true")]),
            field("b", &[]),
            field(
                "c",
                &[
                    (PRIMARY_KEY_METADATA, "YES"),
                    (PRIMARY_KEY_POSITION_METADATA, "1"),
                ],
            ),
            field("d", &[(PRIMARY_KEY_METADATA, "false")]),
            field(
                "e",
                &[
                    (PRIMARY_KEY_METADATA, "1"),
                    (PRIMARY_KEY_POSITION_METADATA, "2"),
                ],
            ),
        ]);
        assert_eq!(primary_key_columns(&schema), vec!["c", "e", "a"]);
    }

    #[test]
    fn no_marks_means_no_key() {
        assert!(primary_key_columns(&Schema::new(vec![field("a", &[])])).is_empty());
    }
}
