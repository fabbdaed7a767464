//! Per-value evaluation against DataFusion's own row-by-row answers.

#![allow(clippy::unwrap_used)]
use super::*;
use crate::cells::row_lines;
use crate::session::{SessionOptions, new_context};
use arrow::array::{DictionaryArray, Int8Array, Int32Array, StringArray, UInt32Array};
use arrow::datatypes::{Int8Type, Int32Type};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

fn schema() -> SchemaRef {
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![
        Field::new("n", DataType::UInt32, false),
        Field::new("computer", dict.clone(), true),
        Field::new("user", dict, true),
        Field::new(
            "code",
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
            true,
        ),
    ]))
}

/// A batch of `rows` rows numbered from `first`: computers from `hosts` (a null key every
/// fifth row), users from a dictionary with a null value and a value no row uses, codes
/// (numbers, and one that is not) with Int8 keys.
fn batch(first: u32, rows: usize, hosts: &ArrayRef) -> RecordBatch {
    let n = UInt32Array::from_iter_values((0..rows as u32).map(|i| first + i));
    let computer_keys: Int32Array = (0..rows)
        .map(|i| (i % 5 != 4).then(|| ((i * 7) % hosts.len()) as i32))
        .collect();
    let computer = DictionaryArray::<Int32Type>::try_new(computer_keys, Arc::clone(hosts)).unwrap();
    let users: ArrayRef = Arc::new(StringArray::from(vec![
        Some("Alice"),
        None,
        Some("bob"),
        Some("never-used"),
        Some("-"),
    ]));
    let user_keys = Int32Array::from_iter_values((0..rows).map(|i| [0, 1, 2, 4][i % 4]));
    let user = DictionaryArray::<Int32Type>::try_new(user_keys, users).unwrap();
    let codes: ArrayRef = Arc::new(StringArray::from(vec!["7", "12", "0x1f"]));
    let code_keys: Int8Array = (0..rows).map(|i| Some((i % 3) as i8)).collect();
    let code = DictionaryArray::<Int8Type>::try_new(code_keys, codes).unwrap();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(n),
            Arc::new(computer),
            Arc::new(user),
            Arc::new(code),
        ],
    )
    .unwrap()
}

/// Batches of every size against their dictionaries: long ones and a slice (the per-value
/// path), short ones, one of them with more values than rows (row by row), an empty one.
fn partitions() -> Vec<Vec<RecordBatch>> {
    let hosts: ArrayRef = Arc::new(StringArray::from(vec![
        Some("WS-A.corp.example"),
        Some("ws-b.corp.example"),
        None,
        Some("DC-1"),
        Some("NAS-9.lan"),
        Some("=cmd|' /C calc'!A0"),
    ]));
    let many: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..500).map(|i| format!("HOST-{i:03}.corp")),
    ));
    let long = batch(0, 3000, &hosts);
    let sliced = batch(10000, 4000, &hosts).slice(37, 2500);
    vec![
        vec![long, batch(40000, 9, &many), sliced],
        vec![batch(20000, 0, &hosts), batch(30000, 64, &hosts)],
    ]
}

fn register(ctx: &SessionContext) {
    let table = MemTable::try_new(schema(), partitions()).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
}

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    row_lines(&batches, "NULL").unwrap()
}

const QUERIES: [&str; 11] = [
    "SELECT n, lower(computer) = 'ws-a.corp.example' AS a FROM t ORDER BY n",
    "SELECT n, split_part(CAST(computer AS VARCHAR), '.', 1) AS host FROM t ORDER BY n",
    // A null key must get what the expression gives a null, not a null.
    "SELECT n, coalesce(computer, 'none') AS c, coalesce(lower(user), '?') AS u FROM t ORDER BY n",
    "SELECT n, CASE WHEN computer IS NULL THEN 'no name' WHEN computer LIKE 'WS%' THEN 'ws' \
     ELSE upper(computer) END AS kind FROM t ORDER BY n",
    "SELECT n FROM t WHERE upper(computer) IN ('WS-B.CORP.EXAMPLE', 'NAS-9.LAN') AND n % 3 = 1 \
     ORDER BY n",
    // Two columns: each one's cast on its own, the concatenation row by row.
    "SELECT n, CAST(user AS VARCHAR) || '@' || split_part(CAST(computer AS VARCHAR), '.', 1) \
     AS who FROM t WHERE lower(user) <> 'alice' ORDER BY n",
    "SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, count(*) AS c, min(n) AS m \
     FROM t GROUP BY 1 ORDER BY 1 NULLS FIRST",
    "SELECT n, length(code) AS len, starts_with(code, '0x') AS hex FROM t ORDER BY n",
    // Booleans: the same for every value (one scalar), and true for the null row only.
    "SELECT n, lower(code) <> 'zzz' AS a, coalesce(lower(computer), 'x') = 'x' AS b FROM t \
     ORDER BY n",
    "SELECT n FROM t WHERE coalesce(upper(user), 'NONE') IN ('NONE', 'BOB') ORDER BY n",
    // Over every code value the cast fails ('0x1f'); over the rows the filter keeps it does not.
    // (A cast of the dictionary itself casts every value: DataFusion fails on it too.)
    "SELECT n, CAST(CAST(code AS VARCHAR) AS INT) + 1 AS c FROM t WHERE code <> '0x1f' \
     ORDER BY n",
];

/// The rule's plans give DataFusion's own answers, and wrap what they should.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_value_expressions_give_datafusions_answers() {
    let ours = new_context(&SessionOptions {
        threads: Some(2),
        ..SessionOptions::default()
    })
    .unwrap();
    register(&ours);
    let plain = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    register(&plain);
    for q in QUERIES {
        let expected = rows(&plain, q).await;
        assert!(expected.len() >= 5, "{q}: {expected:?}");
        assert_eq!(rows(&ours, q).await, expected, "{q}");
    }
    let plan = rows(&ours, &format!("EXPLAIN {}", QUERIES[0]))
        .await
        .join("\n");
    assert!(plan.contains("per_value(lower("), "{plan}");
    let plan = rows(&ours, &format!("EXPLAIN {}", QUERIES[5]))
        .await
        .join("\n");
    assert!(plan.contains("per_value(CAST(user@2"), "{plan}");
    assert!(plan.contains("per_value(lower(user@2) != alice)"), "{plan}");
    // A plain comparison with a literal is DataFusion's own work over the values already.
    let plan = rows(&ours, "EXPLAIN SELECT n FROM t WHERE computer = 'DC-1'")
        .await
        .join("\n");
    assert!(!plan.contains("per_value"), "{plan}");
    let plan = rows(&plain, &format!("EXPLAIN {}", QUERIES[0]))
        .await
        .join("\n");
    assert!(!plan.contains("per_value"), "{plan}");
}

/// The expression itself: per value where that pays, row by row where it does not, and row
/// by row where the values fail but the rows do not.
#[tokio::test]
async fn per_value_falls_back_to_rows() {
    let ctx = SessionContext::new();
    let df_schema = datafusion::common::DFSchema::try_from(schema().as_ref().clone()).unwrap();
    let physical = |sql: &str| {
        let expr = ctx.parse_sql_expr(sql, &df_schema).unwrap();
        ctx.create_physical_expr(expr, &df_schema).unwrap()
    };
    let hosts: ArrayRef = Arc::new(StringArray::from(vec![Some("a.x"), None, Some("B.y")]));
    let many: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..50).map(|i| format!("h{i}.z")),
    ));
    let lower = physical("lower(computer)");
    let wrapped = per_value(Arc::clone(&lower), &schema()).unwrap();
    assert!(wrapped.transformed);
    let wrapped = wrapped.data;
    for b in [
        batch(0, 40, &hosts),
        batch(0, 40, &many),
        batch(0, 0, &hosts),
    ] {
        let want = lower
            .evaluate(&b)
            .unwrap()
            .into_array(b.num_rows())
            .unwrap();
        let got = wrapped
            .evaluate(&b)
            .unwrap()
            .into_array(b.num_rows())
            .unwrap();
        assert_eq!(got.as_ref(), want.as_ref());
    }
    let same = per_value(physical("lower(code) <> 'zzz'"), &schema())
        .unwrap()
        .data;
    let out = same.evaluate(&batch(0, 2000, &hosts)).unwrap();
    assert!(
        matches!(out, ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))),
        "{out:?}"
    );
    let by_values = wrapped.downcast_ref::<PerValue>().unwrap();
    let long = batch(0, 2000, &hosts);
    assert!(by_values.by_values(long.column(1), 2000).is_some());
    let many_values = batch(0, 2000, &many);
    assert!(by_values.by_values(many_values.column(1), 2000).is_some());
    let huge: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..1500).map(|i| format!("h{i}.z")),
    ));
    let half = batch(0, 2000, &huge);
    assert!(by_values.by_values(half.column(1), 2000).is_none());
    let want = lower.evaluate(&half).unwrap().into_array(2000).unwrap();
    let got = wrapped.evaluate(&half).unwrap().into_array(2000).unwrap();
    assert_eq!(got.as_ref(), want.as_ref());
    let fewer = batch(0, 90, &many);
    assert!(by_values.by_values(fewer.column(1), 90).is_none());
    let short = batch(0, 40, &hosts);
    assert!(by_values.by_values(short.column(1), 40).is_none());

    // '0x1f' does not cast: rows that hold only numbers still do.
    let cast = physical("CAST(CAST(code AS VARCHAR) AS INT)");
    let wrapped = per_value(Arc::clone(&cast), &schema()).unwrap().data;
    let numbers = batch(0, 3000, &hosts);
    let keep = arrow::array::BooleanArray::from_iter((0..3000).map(|i| Some(i % 3 != 2)));
    let numbers = arrow::compute::filter_record_batch(&numbers, &keep).unwrap();
    let want = cast.evaluate(&numbers).unwrap().into_array(2000).unwrap();
    let got = wrapped
        .evaluate(&numbers)
        .unwrap()
        .into_array(2000)
        .unwrap();
    assert_eq!(got.as_ref(), want.as_ref());
    assert!(
        wrapped
            .downcast_ref::<PerValue>()
            .unwrap()
            .by_values(numbers.column(3), 2000)
            .is_none()
    );
    assert!(wrapped.evaluate(&batch(0, 3000, &hosts)).is_err());

    // Two columns, a volatile function, a bare column: not wrapped as a whole.
    for sql in [
        "computer = user",
        "random() > 0.5 OR lower(computer) = 'a'",
        "computer",
    ] {
        let e = physical(sql);
        let out = per_value(Arc::clone(&e), &schema()).unwrap().data;
        assert!(out.downcast_ref::<PerValue>().is_none(), "{sql}: {out}");
    }
}
