//! Unit tests: value formatting per Arrow type, keys, templates and filters, compile
//! diagnostics, fuel and determinism.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    DictionaryArray, Float16Array, Float32Array, Float64Array, Int8Array, Int32Array, Int64Array,
    LargeStringArray, ListArray, NullArray, StringArray, StringViewArray, Time32SecondArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Int32Type};
use arrow::record_batch::RecordBatch;
use engine_diag::SourceSpan;
use engine_spec::{
    Guards, Located, MappingSource, MappingSpec, MatchSpec, OnNull, OnRemove, SyncMode, SyncSpec,
};

use crate::format::{format_column, write_decimal};
use crate::{MappingError, PropertyInfo, SyncMapping, key_text};

const FILE: &str = "syncs/contacts.yaml";

fn span(line: usize, column: usize, length: usize) -> SourceSpan {
    SourceSpan {
        file: PathBuf::from(FILE),
        line,
        column,
        length,
    }
}

fn loc(value: &str, line: usize, column: usize) -> Located<String> {
    Located {
        value: value.to_owned(),
        span: span(line, column, value.chars().count()),
    }
}

fn column(property: &str, column: &str, line: usize) -> MappingSpec {
    MappingSpec {
        property: loc(property, line, 7),
        source: MappingSource::Column(loc(column, line + 1, 13)),
        on_null: OnNull::Keep,
    }
}

fn value(property: &str, value: &str, line: usize) -> MappingSpec {
    MappingSpec {
        property: loc(property, line, 7),
        source: MappingSource::Value(loc(value, line + 1, 12)),
        on_null: OnNull::Keep,
    }
}

/// A template written on one line, `template: "…"` at `line`, text starting at column 16.
fn template(property: &str, text: &str, line: usize) -> MappingSpec {
    MappingSpec {
        property: loc(property, line, 7),
        source: MappingSource::Template(loc(text, line + 1, 16)),
        on_null: OnNull::Clear,
    }
}

fn sync(mapping: Vec<MappingSpec>) -> SyncSpec {
    SyncSpec {
        name: loc("contacts", 1, 7),
        file: PathBuf::from(FILE),
        model: loc("customers", 2, 8),
        destination: loc("hubspot", 3, 14),
        object: loc("contacts", 4, 9),
        mode: SyncMode::Upsert,
        match_on: MatchSpec {
            property: loc("email", 6, 13),
            column: loc("email", 7, 11),
            on_invalid: engine_spec::OnInvalidMatch::Fail,
            lookup: engine_spec::MatchLookup::Unique,
            fallback: Vec::new(),
        },
        mapping,
        on_remove: OnRemove::Nothing,
        guards: Guards::default(),
        batch_size: None,
        associations: Vec::new(),
        event: None,
        list: None,
    }
}

fn pk(columns: &[&str]) -> Vec<Located<String>> {
    columns.iter().map(|c| loc(c, 30, 16)).collect()
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).expect("test columns have equal lengths")
}

/// A model with `id` and `email` plus `extra` columns, all of length `extra[0]`'s.
fn model(extra: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let rows = extra.first().map_or(2, |(_, a)| a.len());
    let ids: Vec<i64> = (1..=rows as i64).collect();
    let emails: Vec<String> = (1..=rows).map(|i| format!("u{i}@example.com")).collect();
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from(ids))),
        ("email", Arc::new(StringArray::from(emails))),
    ];
    columns.extend(extra);
    batch(columns)
}

fn compile(mapping: Vec<MappingSpec>, key: &[&str], batch: &RecordBatch) -> SyncMapping {
    match SyncMapping::compile(&sync(mapping), &pk(key), &batch.schema()) {
        Ok(m) => m,
        Err(diagnostics) => panic!("compile failed:\n{}", show_diagnostics(&diagnostics)),
    }
}

fn compile_err(mapping: Vec<MappingSpec>, key: &[&str], batch: &RecordBatch) -> String {
    match SyncMapping::compile(&sync(mapping), &pk(key), &batch.schema()) {
        Ok(_) => panic!("compile succeeded"),
        Err(diagnostics) => show_diagnostics(&diagnostics),
    }
}

fn show_diagnostics(diagnostics: &[engine_diag::Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line per row: `column=value` pairs, strings quoted, null as `null`.
fn show(batch: &RecordBatch) -> String {
    let mut out = String::new();
    for row in 0..batch.num_rows() {
        for (i, field) in batch.schema().fields().iter().enumerate() {
            let column = batch.column(i).as_string::<i32>();
            let sep = if i == 0 { "" } else { " " };
            if column.is_null(row) {
                let _ = write!(out, "{sep}{}=null", field.name());
            } else {
                let _ = write!(out, "{sep}{}={:?}", field.name(), column.value(row));
            }
        }
        out.push('\n');
    }
    out
}

/// The texts of a formatted column, one per line, null as `null`.
fn texts(array: ArrayRef) -> String {
    let formatted = format_column(&array);
    let strings = formatted.as_string::<i32>();
    let lines: Vec<String> = strings
        .iter()
        .map(|v| v.map_or_else(|| "null".to_owned(), |s| format!("{s:?}")))
        .collect();
    lines.join("\n")
}

/// Renders `text` as the only mapped template over `batch`; values of the `out` column.
fn render(text: &str, batch: &RecordBatch) -> Result<Vec<Option<String>>, MappingError> {
    let mapping = compile(vec![template("out", text, 10)], &["id"], batch);
    let mapped = mapping.map_batch(batch)?;
    let out = mapped
        .column_by_name("out")
        .expect("out column")
        .as_string::<i32>();
    Ok(out.iter().map(|v| v.map(str::to_owned)).collect())
}

fn render_one(text: &str, batch: &RecordBatch) -> Option<String> {
    match render(text, batch) {
        Ok(values) => values.into_iter().next().flatten(),
        Err(e) => panic!("render of {text:?} failed: {e}"),
    }
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

// ---------------------------------------------------------------- formatting per Arrow type

#[test]
fn strings_pass_through() {
    let utf8: ArrayRef = strings(&[Some("Ada"), None, Some(""), Some("ünï \"q\"")]);
    // A Utf8 column is not copied.
    let formatted = format_column(&utf8);
    assert!(Arc::ptr_eq(&formatted, &utf8));
    insta::assert_snapshot!(texts(utf8), @r#"
    "Ada"
    null
    ""
    "ünï \"q\"""#);
    let large: ArrayRef = Arc::new(LargeStringArray::from(vec![Some("big"), None]));
    insta::assert_snapshot!(texts(large), @r#"
    "big"
    null"#);
    let view: ArrayRef = Arc::new(StringViewArray::from(vec![
        Some("a view longer than twelve"),
        None,
    ]));
    insta::assert_snapshot!(texts(view), @r#"
    "a view longer than twelve"
    null"#);
}

#[test]
fn integers_and_booleans() {
    let ints: ArrayRef = Arc::new(Int64Array::from(vec![
        Some(0),
        Some(-42),
        None,
        Some(i64::MAX),
    ]));
    insta::assert_snapshot!(texts(ints), @r#"
    "0"
    "-42"
    null
    "9223372036854775807""#);
    let small: ArrayRef = Arc::new(Int8Array::from(vec![Some(-128), Some(7)]));
    insta::assert_snapshot!(texts(small), @r#"
    "-128"
    "7""#);
    let unsigned: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX]));
    insta::assert_snapshot!(texts(unsigned), @r#""18446744073709551615""#);
    let bools: ArrayRef = Arc::new(BooleanArray::from(vec![Some(true), Some(false), None]));
    insta::assert_snapshot!(texts(bools), @r#"
    "true"
    "false"
    null"#);
}

#[test]
fn floats_are_shortest_round_trip() {
    let floats: ArrayRef = Arc::new(Float64Array::from(vec![
        Some(17.0),
        Some(0.1),
        Some(-2.5),
        Some(-0.0),
        Some(1e21),
        Some(1.5e-7),
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
        None,
    ]));
    insta::assert_snapshot!(texts(floats), @r#"
    "17"
    "0.1"
    "-2.5"
    "0"
    "1000000000000000000000"
    "0.00000015"
    "NaN"
    "Infinity"
    "-Infinity"
    null"#);
    let single: ArrayRef = Arc::new(Float32Array::from(vec![0.1f32, 17.0, 3.4028235e38]));
    insta::assert_snapshot!(texts(single), @r#"
    "0.1"
    "17"
    "340282350000000000000000000000000000000""#);
    let half: ArrayRef = Arc::new(Float16Array::from(vec![half_one_and_a_half()]));
    insta::assert_snapshot!(texts(half), @r#""1.5""#);
}

fn half_one_and_a_half()
-> <arrow::datatypes::Float16Type as arrow::datatypes::ArrowPrimitiveType>::Native {
    let array = arrow::compute::cast(
        &(Arc::new(Float32Array::from(vec![1.5f32])) as ArrayRef),
        &DataType::Float16,
    )
    .expect("f32 → f16 cast");
    array
        .as_primitive::<arrow::datatypes::Float16Type>()
        .value(0)
}

#[test]
fn decimals_keep_their_scale() {
    let decimals: ArrayRef = Arc::new(
        Decimal128Array::from(vec![Some(1230), Some(-5), Some(0), None, Some(123_456_789)])
            .with_precision_and_scale(12, 2)
            .expect("valid precision"),
    );
    insta::assert_snapshot!(texts(decimals), @r#"
    "12.30"
    "-0.05"
    "0.00"
    null
    "1234567.89""#);
    // Agrees with arrow's own decimal text over many values and scales.
    for scale in [0i8, 1, 2, 5, 10, 38] {
        let values: Vec<i128> = vec![
            0,
            1,
            -1,
            9,
            10,
            99,
            12345,
            -12345,
            10i128.pow(37),
            -(10i128.pow(37)) + 7,
        ];
        let array = Decimal128Array::from(values.clone())
            .with_precision_and_scale(38, scale)
            .expect("valid precision");
        for (i, v) in values.iter().enumerate() {
            let mut ours = String::new();
            write_decimal(&mut ours, *v, scale).expect("write to String");
            assert_eq!(ours, array.value_as_string(i), "value {v} scale {scale}");
        }
    }
    let mut negative_scale = String::new();
    write_decimal(&mut negative_scale, 12, -2).expect("write to String");
    assert_eq!(negative_scale, "1200");
}

#[test]
fn dates() {
    let days: ArrayRef = Arc::new(Date32Array::from(vec![
        Some(0),
        Some(19_737),
        Some(-1),
        None,
    ]));
    insta::assert_snapshot!(texts(days), @r#"
    "1970-01-01"
    "2024-01-15"
    "1969-12-31"
    null"#);
    let millis: ArrayRef = Arc::new(Date64Array::from(vec![1_705_276_800_000, -1]));
    insta::assert_snapshot!(texts(millis), @r#"
    "2024-01-15"
    "1969-12-31""#);
}

#[test]
fn civil_dates_agree_with_chrono() {
    use chrono::{Datelike, NaiveDate};
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    for days in (-1_000_000i64..3_000_000)
        .step_by(17)
        .chain([-719_528, -719_529, 2_932_896])
    {
        let date = epoch + chrono::Duration::days(days);
        let expected = (i64::from(date.year()), date.month(), date.day());
        assert_eq!(crate::format::civil_from_days(days), expected, "day {days}");
    }
    let mut out = String::new();
    crate::format::write_epoch_millis(&mut out, -62_198_755_200_000).expect("write to String");
    out.push(' ');
    crate::format::write_epoch_days(&mut out, 2_932_897).expect("write to String");
    // Year -1 (ISO 8601 expanded) and year 10000.
    assert_eq!(out, "-0001-01-01T00:00:00.000Z +10000-01-01");
}

#[test]
fn timestamps_are_rfc3339_utc_millis() {
    let at = 1_705_314_600i64; // 2024-01-15T10:30:00Z
    let seconds: ArrayRef = Arc::new(TimestampSecondArray::from(vec![Some(at), None, Some(-1)]));
    insta::assert_snapshot!(texts(seconds), @r#"
    "2024-01-15T10:30:00.000Z"
    null
    "1969-12-31T23:59:59.000Z""#);
    let millis: ArrayRef =
        Arc::new(TimestampMillisecondArray::from(vec![at * 1000 + 123]).with_timezone("+02:00"));
    insta::assert_snapshot!(texts(millis), @r#""2024-01-15T10:30:00.123Z""#);
    let micros: ArrayRef = Arc::new(
        TimestampMicrosecondArray::from(vec![at * 1_000_000 + 123_999, -1]).with_timezone("UTC"),
    );
    insta::assert_snapshot!(texts(micros), @r#"
    "2024-01-15T10:30:00.123Z"
    "1969-12-31T23:59:59.999Z""#);
    let nanos: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![
        at * 1_000_000_000 + 999_999_999,
    ]));
    insta::assert_snapshot!(texts(nanos), @r#""2024-01-15T10:30:00.999Z""#);
}

#[test]
fn other_types_use_arrow_display_and_dictionaries_their_values() {
    let times: ArrayRef = Arc::new(Time32SecondArray::from(vec![Some(37_800), None]));
    insta::assert_snapshot!(texts(times), @r#"
    "10:30:00"
    null"#);
    let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), Some(2)]),
        None,
    ]));
    insta::assert_snapshot!(texts(lists), @r#"
    "[1, 2]"
    null"#);
    let dictionary: ArrayRef = Arc::new(
        vec![Some("gold"), None, Some("gold")]
            .into_iter()
            .collect::<DictionaryArray<Int32Type>>(),
    );
    insta::assert_snapshot!(texts(dictionary), @r#"
    "gold"
    null
    "gold""#);
    let nulls: ArrayRef = Arc::new(NullArray::new(2));
    insta::assert_snapshot!(texts(nulls), @r"
    null
    null");
}

// ---------------------------------------------------------------- mapping, keys

#[test]
fn maps_columns_values_and_the_match_property() {
    let rows = model(vec![
        ("first_name", strings(&[Some("Ada"), None])),
        (
            "score",
            Arc::new(Float64Array::from(vec![17.0, 2.5])) as ArrayRef,
        ),
    ]);
    let mapping = compile(
        vec![
            column("firstname", "first_name", 10),
            value("lifecyclestage", "customer", 12),
            column("score", "score", 14),
            column("user_id", "id", 16),
        ],
        &["id"],
        &rows,
    );
    assert_eq!(
        mapping.properties(),
        &[
            PropertyInfo {
                name: "email".into(),
                on_null: OnNull::Keep,
                is_match: true
            },
            PropertyInfo {
                name: "firstname".into(),
                on_null: OnNull::Keep,
                is_match: false
            },
            PropertyInfo {
                name: "lifecyclestage".into(),
                on_null: OnNull::Keep,
                is_match: false
            },
            PropertyInfo {
                name: "score".into(),
                on_null: OnNull::Keep,
                is_match: false
            },
            PropertyInfo {
                name: "user_id".into(),
                on_null: OnNull::Keep,
                is_match: false
            },
        ]
    );
    let mapped = mapping.map_batch(&rows).expect("maps");
    assert_eq!(mapped.schema(), mapping.output_schema());
    insta::assert_snapshot!(show(&mapped), @r#"
    __key="1" email="u1@example.com" firstname="Ada" lifecyclestage="customer" score="17" user_id="1"
    __key="2" email="u2@example.com" firstname=null lifecyclestage="customer" score="2.5" user_id="2"
    "#);
}

#[test]
fn composite_keys_are_json_arrays_and_null_when_a_part_is_null() {
    let rows = model(vec![(
        "account",
        strings(&[Some("acme"), None, Some("quo\"te")]),
    )]);
    let mapping = compile(vec![], &["account", "id"], &rows);
    insta::assert_snapshot!(show(&mapping.map_batch(&rows).expect("maps")), @r#"
    __key="[\"acme\",\"1\"]" email="u1@example.com"
    __key=null email="u2@example.com"
    __key="[\"quo\\\"te\",\"3\"]" email="u3@example.com"
    "#);
}

#[test]
fn key_text_matches_serde_json() {
    assert_eq!(key_text(&["acme"]), "acme");
    assert_eq!(key_text(&["acme", "42"]), r#"["acme","42"]"#);
    let awkward = [
        "a\"b",
        "back\\slash",
        "tab\tnew\nline\r",
        "\u{1}\u{1f}\u{7f}",
        "ünï",
        "\u{8}\u{c}",
    ];
    assert_eq!(
        key_text(&awkward),
        serde_json::to_string(&awkward).expect("serialize")
    );
}

#[test]
fn a_compiled_mapping_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SyncMapping>();
    assert_send_sync::<MappingError>();
}

#[test]
fn empty_batches_keep_the_schema() {
    let rows = model(vec![]).slice(0, 0);
    let mapping = compile(
        vec![template("greeting", "hi {{ row.email }}", 10)],
        &["id"],
        &rows,
    );
    let mapped = mapping.map_batch(&rows).expect("maps");
    assert_eq!(mapped.num_rows(), 0);
    assert_eq!(mapped.schema(), mapping.output_schema());
}

// ---------------------------------------------------------------- templates

/// The two templates of the Hightouch HubSpot guide (DEPENDENCIES.md §2).
#[test]
fn hightouch_templates() {
    let rows = model(vec![(
        "column_name",
        strings(&[Some("2024-01-15T10:30:00Z"), None]),
    )]);
    let plain = "{{ row['column_name'] | to_unix }}";
    let err = render(plain, &rows).expect_err("to_unix on null fails");
    insta::assert_snapshot!(err, @"cannot map property `out` of row `2`: to_unix: input is null");
    insta::assert_snapshot!(
        show_diagnostics(&[err.to_diagnostic("contacts")]),
        @r"
    error[mapping::render_failed]: cannot map property `out`: to_unix: input is null
      --> sync `contacts`, row `2`, field `out`
      hint: guard nullable columns: `{%- if row['col'] == null -%}{{ null }}{%- else -%}…{%- endif -%}`
    "
    );
    let first = rows.slice(0, 1);
    assert_eq!(
        render(plain, &first).expect("renders"),
        vec![Some("1705314600000".to_owned())]
    );

    let guarded = "{%- if row['column_name'] == null -%} {{null}} {%- else -%} {{row['column_name'] | to_unix}} {%- endif -%}";
    assert_eq!(
        render(guarded, &rows).expect("renders"),
        vec![Some("1705314600000".to_owned()), None]
    );
}

#[test]
fn null_output_rules() {
    let rows = model(vec![("nickname", strings(&[None]))]);
    // Printing only none (and whitespace) is null.
    assert_eq!(render_one("{{ row.nickname }}", &rows), None);
    assert_eq!(render_one("{{ null }}", &rows), None);
    assert_eq!(render_one("  {{ nil }}\n", &rows), None);
    // none inside other text prints as nothing.
    assert_eq!(
        render_one("Hi {{ row.nickname }}!", &rows).as_deref(),
        Some("Hi !")
    );
    // An empty output that printed no none is an empty string.
    assert_eq!(
        render_one("{% if false %}x{% endif %}", &rows).as_deref(),
        Some("")
    );
    assert_eq!(render_one("{{ '' }}", &rows).as_deref(), Some(""));
    // A string that looks like null is just a string.
    assert_eq!(render_one("{{ 'null' }}", &rows).as_deref(), Some("null"));
}

#[test]
fn row_values_keep_their_types() {
    let rows = model(vec![
        ("n", Arc::new(Int32Array::from(vec![41])) as ArrayRef),
        ("x", Arc::new(Float64Array::from(vec![17.0])) as ArrayRef),
        (
            "f32",
            Arc::new(Float32Array::from(vec![0.1f32])) as ArrayRef,
        ),
        ("flag", Arc::new(BooleanArray::from(vec![true])) as ArrayRef),
        ("day", Arc::new(Date32Array::from(vec![19_737])) as ArrayRef),
        (
            "at",
            Arc::new(TimestampSecondArray::from(vec![1_705_314_600]).with_timezone("UTC"))
                as ArrayRef,
        ),
        (
            "price",
            Arc::new(
                Decimal128Array::from(vec![1999])
                    .with_precision_and_scale(10, 2)
                    .expect("valid"),
            ) as ArrayRef,
        ),
        (
            "tags",
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                Some(vec![Some(3), Some(4)]),
            ])) as ArrayRef,
        ),
    ]);
    let one = rows.slice(0, 1);
    let t = |text: &str| render_one(text, &one).expect("not null");
    assert_eq!(
        render_one(
            "{{ row.nothing }}",
            &model(vec![("nothing", Arc::new(NullArray::new(1)) as ArrayRef)])
        ),
        None
    );
    assert_eq!(t("{{ row.n + 1 }}"), "42");
    assert_eq!(
        t("{{ row.x }} {{ row.x * 2 }} {{ row.x / 4 }}"),
        "17 34 4.25"
    );
    assert_eq!(t("{{ row.f32 }}"), "0.1");
    assert_eq!(
        t("{% if row.flag %}yes{% endif %} {{ row.flag }}"),
        "yes true"
    );
    assert_eq!(
        t("{{ row.day }} {{ row.at }}"),
        "2024-01-15 2024-01-15T10:30:00.000Z"
    );
    assert_eq!(
        t("{{ row.day | to_unix }} {{ row.at | to_unix }}"),
        "1705276800000 1705314600000"
    );
    assert_eq!(t("{{ row.price }} {{ row.price > 19 }}"), "19.99 true");
    assert_eq!(
        t("{{ row.tags | join(';') }} {{ row.tags | size }}"),
        "3;4 2"
    );
    assert_eq!(t("{{ row.email | upcase }}"), "U1@EXAMPLE.COM");
    // Containers print as minijinja shows them; `tojson` or `join` give a destination format.
    assert_eq!(
        t("{{ row.flag | append('!') }} {{ [true, none] }}"),
        "true! [True, None]"
    );
    assert_eq!(t("{{ [true, none, 1.5] | tojson }}"), "[true, null, 1.5]");
    // `row` iterates over the columns in schema order.
    assert_eq!(
        t("{% for c in row %}{{ c }},{% endfor %}"),
        "id,email,n,x,f32,flag,day,at,price,tags,"
    );
    assert_eq!(t("{{ row.email ~ '<b>' }}"), "u1@example.com<b>");
}

#[test]
fn liquid_filters() {
    let rows = model(vec![
        ("name", strings(&[Some("  Ada Lovelace ")])),
        ("nothing", strings(&[None])),
        ("csv", strings(&[Some("a,b,,c,,")])),
        ("amount", strings(&[Some("10")])),
    ]);
    let cases = [
        "{{ row.name | strip | upcase }}",
        "{{ row.name | downcase | strip }}",
        "{{ row.name | lstrip }}|",
        "{{ row.name | rstrip }}|",
        "{{ row.name | strip | size }}",
        "{{ row.email | append('!') | prepend('<') }}",
        "{{ row.nothing | append('x') }}",
        "{{ row.nothing | default('n/a') }} {{ '' | default('empty') }} {{ false | default('no') }} {{ 0 | default('zero') }}",
        "{{ row.csv | split(',') | join('|') }} {{ row.csv | split(',') | size }}",
        "{{ 'abc' | split('') | join('-') }}",
        "{{ row.amount | plus(5) }} {{ row.amount | minus(2.5) }} {{ 4 | times(2.5) }} {{ 3 | times(3) }}",
        "{{ 7 | divided_by(2) }} {{ -7 | divided_by(2) }} {{ 7 | divided_by(2.0) }} {{ 7 | modulo(3) }} {{ -7 | modulo(3) }}",
        "{{ row.nothing | plus(1) }}|{{ row.nothing | upcase }}|{{ row.nothing | size }}",
        "{{ '2024-01-15T10:30:00Z' | date('%Y/%m/%d %H:%M') }} {{ '2024-03-05' | date('%Y') }}",
        "{{ '2024-01-15T12:30:00+02:00' | to_unix }} {{ '2024-01-15 10:30:00' | to_unix }} {{ '2024-01-15T10:30:00.5Z' | to_unix }}",
        "{{ row.name | strip | lower | replace('ada', 'Augusta Ada') | title }}",
    ];
    let mut out = String::new();
    for case in cases {
        let rendered = render_one(case, &rows).unwrap_or_else(|| "<null>".to_owned());
        let _ = writeln!(out, "{case}\n  → {rendered:?}");
    }
    insta::assert_snapshot!(out, @r#"
    {{ row.name | strip | upcase }}
      → "ADA LOVELACE"
    {{ row.name | downcase | strip }}
      → "ada lovelace"
    {{ row.name | lstrip }}|
      → "Ada Lovelace |"
    {{ row.name | rstrip }}|
      → "  Ada Lovelace|"
    {{ row.name | strip | size }}
      → "12"
    {{ row.email | append('!') | prepend('<') }}
      → "<u1@example.com!"
    {{ row.nothing | append('x') }}
      → "x"
    {{ row.nothing | default('n/a') }} {{ '' | default('empty') }} {{ false | default('no') }} {{ 0 | default('zero') }}
      → "n/a empty no 0"
    {{ row.csv | split(',') | join('|') }} {{ row.csv | split(',') | size }}
      → "a|b||c 4"
    {{ 'abc' | split('') | join('-') }}
      → "a-b-c"
    {{ row.amount | plus(5) }} {{ row.amount | minus(2.5) }} {{ 4 | times(2.5) }} {{ 3 | times(3) }}
      → "15 7.5 10 9"
    {{ 7 | divided_by(2) }} {{ -7 | divided_by(2) }} {{ 7 | divided_by(2.0) }} {{ 7 | modulo(3) }} {{ -7 | modulo(3) }}
      → "3 -4 3.5 1 2"
    {{ row.nothing | plus(1) }}|{{ row.nothing | upcase }}|{{ row.nothing | size }}
      → "||0"
    {{ '2024-01-15T10:30:00Z' | date('%Y/%m/%d %H:%M') }} {{ '2024-03-05' | date('%Y') }}
      → "2024/01/15 10:30 2024"
    {{ '2024-01-15T12:30:00+02:00' | to_unix }} {{ '2024-01-15 10:30:00' | to_unix }} {{ '2024-01-15T10:30:00.5Z' | to_unix }}
      → "1705314600000 1705314600000 1705314600500"
    {{ row.name | strip | lower | replace('ada', 'Augusta Ada') | title }}
      → "Augusta Ada Lovelace"
    "#);
}

#[test]
fn filter_errors_name_the_row_and_property() {
    let rows = model(vec![("amount", strings(&[Some("12"), Some("lots")]))]);
    let errors: Vec<String> = [
        "{{ row.amount | plus(1) }}",
        "{{ row.amount | to_unix }}",
        "{{ row.amount | divided_by(0) }}",
        "{{ '2024-01-15' | date('%Q') }}",
        "{{ 9223372036854775807 | times(9223372036854775807) | times(9223372036854775807) }}",
    ]
    .iter()
    .map(|text| match render(text, &rows) {
        Ok(values) => format!("ok {values:?}"),
        Err(e) => e.to_string(),
    })
    .collect();
    insta::assert_snapshot!(errors.join("\n"), @r"
    cannot map property `out` of row `2`: plus: `lots` is not a number
    cannot map property `out` of row `1`: to_unix: `12` is not an ISO 8601 date or date-time (e.g. `2024-01-15` or `2024-01-15T10:30:00Z`)
    cannot map property `out` of row `1`: divided_by: division by zero
    cannot map property `out` of row `1`: date: `%Q` is not a valid strftime format
    cannot map property `out` of row `1`: times: integer overflow
    ");
}

#[test]
fn fuel_stops_runaway_templates() {
    let rows = model(vec![]);
    let err = render(
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}",
        &rows,
    )
    .expect_err("runs out of fuel");
    insta::assert_snapshot!(err, @"cannot map property `out` of row `1`: the template ran out of fuel (more than 100000 steps); is there a runaway loop?");
    // An ordinary template is far below the budget.
    assert!(render("{% for i in range(200) %}{{ i }}{% endfor %}", &rows).is_ok());
}

#[test]
fn undefined_values_are_errors_when_printed() {
    let rows = model(vec![]);
    // Dynamic lookups cannot be checked by compile; printing them fails at render.
    let err = render("{% set c = 'nope' %}{{ row[c] }}", &rows).expect_err("undefined");
    insta::assert_snapshot!(err, @"cannot map property `out` of row `1`: undefined value: `row[...]` is undefined");
    // Testing them is allowed.
    assert_eq!(
        render_one(
            "{% set c = 'nope' %}{% if row[c] %}x{% else %}y{% endif %}",
            &rows
        )
        .as_deref(),
        Some("y")
    );
}

#[test]
fn mapping_is_deterministic_across_batch_splits() {
    let n = 50;
    let names: Vec<Option<String>> = (0..n)
        .map(|i| (i % 7 != 0).then(|| format!("name {i}")))
        .collect();
    let scores: Vec<Option<f64>> = (0..n)
        .map(|i| (i % 5 != 0).then(|| f64::from(i) / 3.0))
        .collect();
    let rows = model(vec![
        ("name", Arc::new(StringArray::from(names)) as ArrayRef),
        ("score", Arc::new(Float64Array::from(scores)) as ArrayRef),
    ]);
    let mapping = compile(
        vec![
            column("firstname", "name", 10),
            template(
                "label",
                "{{ row.name | default('anon') | upcase }}:{{ row.score | default(0) | round(2) }}",
                12,
            ),
            template(
                "score_ms",
                "{%- if row.score == null -%}{{ null }}{%- else -%}{{ row.score | times(1000) }}{%- endif -%}",
                14,
            ),
        ],
        &["id", "email"],
        &rows,
    );
    let whole = show(&mapping.map_batch(&rows).expect("maps"));
    assert_eq!(whole, show(&mapping.map_batch(&rows).expect("maps again")));
    let mut pieces = String::new();
    for (offset, len) in [(0, 1), (1, 20), (21, 29)] {
        pieces.push_str(&show(
            &mapping
                .map_batch(&rows.slice(offset, len))
                .expect("maps a slice"),
        ));
    }
    assert_eq!(whole, pieces);
    insta::assert_snapshot!(whole.lines().take(3).collect::<Vec<_>>().join("\n"), @r#"
    __key="[\"1\",\"u1@example.com\"]" email="u1@example.com" firstname=null label="ANON:0" score_ms=null
    __key="[\"2\",\"u2@example.com\"]" email="u2@example.com" firstname="name 1" label="NAME 1:0.33" score_ms="333.3333333333333"
    __key="[\"3\",\"u3@example.com\"]" email="u3@example.com" firstname="name 2" label="NAME 2:0.67" score_ms="666.6666666666666"
    "#);
}

// ---------------------------------------------------------------- Liquid templates

/// Renders each template over every row of `rows`: the template, then one line per row.
fn render_all(cases: &[&str], rows: &RecordBatch) -> String {
    let mut out = String::new();
    for case in cases {
        let values = match render(case, rows) {
            Ok(values) => values
                .iter()
                .map(|v| {
                    v.as_ref()
                        .map_or_else(|| "<null>".to_owned(), |s| format!("{s:?}"))
                })
                .collect::<Vec<_>>()
                .join(" | "),
            Err(e) => format!("error: {e}"),
        };
        let _ = writeln!(out, "{case}\n  → {values}");
    }
    out
}

/// Rows for the Liquid tests: a full row, a row of nulls, a row of empty strings and zeros.
fn liquid_rows() -> RecordBatch {
    model(vec![
        ("name", strings(&[Some("  Ada Lovelace "), None, Some("")])),
        (
            "at",
            strings(&[Some("2024-01-15T10:30:00Z"), None, Some("2024-03-05")]),
        ),
        ("tier", strings(&[Some("gold"), None, Some("tin")])),
        (
            "mail",
            strings(&[Some("Ada.L@Gmail.COM"), None, Some("ops@acme-corp.io")]),
        ),
        (
            "count",
            Arc::new(Int64Array::from(vec![Some(3), None, Some(0)])) as ArrayRef,
        ),
        (
            "bio",
            strings(&[
                Some("Mathematician and writer, known for the Analytical Engine"),
                None,
                Some("short"),
            ]),
        ),
    ])
}

#[test]
fn liquid_filter_arguments() {
    let cases = [
        r#"{{ row.at | date: "%Y-%m-%d" }}"#,
        r#"{{ row.name | default: "n/a" }}"#,
        r#"{{ row.name | strip | default: "n/a" }}"#,
        r#"{{ row.tier | split: "i" | join: "," }}"#,
        r#"{{ row.bio | truncate: 20 }}"#,
        r#"{{ row.bio | truncate: 20, "" }} {{ row.bio | truncate: 8, "…" }}"#,
        r#"{{ row.bio | truncate }}"#,
        r#"{{ row.name | replace: "a", "4" }} {{ row.name | replace: " " }}"#,
        r#"{{ row.tier | append: "!" }} {{ row.tier | prepend: "tier: " }}"#,
        r#"{{ row.name | strip | downcase | replace: " ", "." | append: "@example.com" | truncate: 18 }}"#,
        r#"{{row.count|plus:1|times:2}}"#,
        r#"{{ false | default: "no" }} {{ false | default: "no", allow_false: true }}"#,
        r#"{{ row.name | upcase | strip }}"#,
    ];
    insta::assert_snapshot!(render_all(&cases, &liquid_rows()), @r#"
    {{ row.at | date: "%Y-%m-%d" }}
      → "2024-01-15" | <null> | "2024-03-05"
    {{ row.name | default: "n/a" }}
      → "  Ada Lovelace " | "n/a" | "n/a"
    {{ row.name | strip | default: "n/a" }}
      → "Ada Lovelace" | "n/a" | "n/a"
    {{ row.tier | split: "i" | join: "," }}
      → "gold" | "" | "t,n"
    {{ row.bio | truncate: 20 }}
      → "Mathematician and..." | <null> | "short"
    {{ row.bio | truncate: 20, "" }} {{ row.bio | truncate: 8, "…" }}
      → "Mathematician and wr Mathema…" | <null> | "short short"
    {{ row.bio | truncate }}
      → "Mathematician and writer, known for the Analyti..." | <null> | "short"
    {{ row.name | replace: "a", "4" }} {{ row.name | replace: " " }}
      → "  Ad4 Lovel4ce  AdaLovelace" | <null> | " "
    {{ row.tier | append: "!" }} {{ row.tier | prepend: "tier: " }}
      → "gold! tier: gold" | "! tier: " | "tin! tier: tin"
    {{ row.name | strip | downcase | replace: " ", "." | append: "@example.com" | truncate: 18 }}
      → "ada.lovelace@ex..." | "@example.com" | "@example.com"
    {{row.count|plus:1|times:2}}
      → "8" | <null> | "2"
    {{ false | default: "no" }} {{ false | default: "no", allow_false: true }}
      → "no false" | "no false" | "no false"
    {{ row.name | upcase | strip }}
      → "ADA LOVELACE" | <null> | ""
    "#);
}

#[test]
fn liquid_tags() {
    let cases = [
        r#"{% assign n = row.name | strip %}{{ n | upcase }}"#,
        r#"{% unless row.tier == "gold" %}regular{% else %}gold{% endunless %}"#,
        r#"{% if row.tier == "gold" %}G{% elsif row.tier == "tin" %}T{% else %}?{% endif %}"#,
        r#"{% if row.mail contains "@" %}email{% else %}no email{% endif %}"#,
        r#"{% if row.bio contains "Engine" and row.count > 1 %}yes{% endif %}"#,
        "{% case row.tier %}\n  {% when \"gold\" %}G\n  {% when \"silver\", \"tin\" %}S/T\n  {% else %}other\n{% endcase %}",
        "{% case row.count %}{% when 0 %}none{% when 3 %}three{% endcase %}",
        r#"{% capture label %}{{ row.tier | upcase }}-{{ row.count }}{% endcapture %}{{ label | downcase }}"#,
        "{% comment %}ignored {{ row.nope }}{% endcomment %}{{ row.tier }}",
        "{%- comment -%} ignored {%- endcomment -%}\n{{ row.tier | default: 'none' }}",
        r#"{% if row.name == blank %}blank{% else %}set{% endif %}"#,
        r#"{% if row.name == empty %}empty{% else %}not empty{% endif %}"#,
        r#"{% if row.name != nil %}present{% else %}nil{% endif %}"#,
        r#"{% if row.name == null %}{{ null }}{% else %}{{ row.name | strip }}{% endif %}"#,
        "{% for p in row.bio | split: ' ' %}{% if forloop.index <= 2 %}{{ p }}.{% endif %}{% endfor %}",
        "{% echo row.tier | upcase %}",
        "{{ row.tier | append: \"!\" -}}\n {%- assign c = 'nope' %}{% if row[c] %}defined{% endif %}",
    ];
    insta::assert_snapshot!(render_all(&cases, &liquid_rows()), @r#"
    {% assign n = row.name | strip %}{{ n | upcase }}
      → "ADA LOVELACE" | <null> | ""
    {% unless row.tier == "gold" %}regular{% else %}gold{% endunless %}
      → "gold" | "regular" | "regular"
    {% if row.tier == "gold" %}G{% elsif row.tier == "tin" %}T{% else %}?{% endif %}
      → "G" | "?" | "T"
    {% if row.mail contains "@" %}email{% else %}no email{% endif %}
      → "email" | "no email" | "email"
    {% if row.bio contains "Engine" and row.count > 1 %}yes{% endif %}
      → "yes" | "" | ""
    {% case row.tier %}
      {% when "gold" %}G
      {% when "silver", "tin" %}S/T
      {% else %}other
    {% endcase %}
      → "G\n  " | "other\n" | "S/T\n  "
    {% case row.count %}{% when 0 %}none{% when 3 %}three{% endcase %}
      → "three" | "" | "none"
    {% capture label %}{{ row.tier | upcase }}-{{ row.count }}{% endcapture %}{{ label | downcase }}
      → "gold-3" | "-" | "tin-0"
    {% comment %}ignored {{ row.nope }}{% endcomment %}{{ row.tier }}
      → "gold" | <null> | "tin"
    {%- comment -%} ignored {%- endcomment -%}
    {{ row.tier | default: 'none' }}
      → "gold" | "none" | "tin"
    {% if row.name == blank %}blank{% else %}set{% endif %}
      → "set" | "blank" | "blank"
    {% if row.name == empty %}empty{% else %}not empty{% endif %}
      → "not empty" | "not empty" | "empty"
    {% if row.name != nil %}present{% else %}nil{% endif %}
      → "present" | "nil" | "present"
    {% if row.name == null %}{{ null }}{% else %}{{ row.name | strip }}{% endif %}
      → "Ada Lovelace" | <null> | ""
    {% for p in row.bio | split: ' ' %}{% if forloop.index <= 2 %}{{ p }}.{% endif %}{% endfor %}
      → "Mathematician.and." | "" | "short."
    {% echo row.tier | upcase %}
      → "GOLD" | <null> | "TIN"
    {{ row.tier | append: "!" -}}
     {%- assign c = 'nope' %}{% if row[c] %}defined{% endif %}
      → "gold!" | "!" | "tin!"
    "#);
}

/// In a Liquid template only nil and false are false; a Jinja template keeps Jinja's rule.
#[test]
fn liquid_truthiness() {
    let cases = [
        // Liquid (the template uses `assign`): "" and 0 are true.
        "{% assign liquid = true %}{% if row.name %}T{% else %}F{% endif %}",
        "{% assign liquid = true %}{% if row.count %}T{% else %}F{% endif %}",
        "{% unless row.count %}F{% else %}T{% endunless %}",
        "{% if row.count or row.name %}T{% else %}F{% endif %}{% assign liquid = true %}",
        // Liquid's `and` / `or` group from the right: false and (false or true) is false.
        "{% if false and false or true %}T{% else %}F{% endif %}{% assign liquid = true %}",
        // Jinja (nothing Liquid-only): "" and 0 are false, `and` binds first.
        "{% if row.name %}T{% else %}F{% endif %}",
        "{% if row.count %}T{% else %}F{% endif %}",
        "{% if false and false or true %}T{% else %}F{% endif %}",
    ];
    insta::assert_snapshot!(render_all(&cases, &liquid_rows()), @r#"
    {% assign liquid = true %}{% if row.name %}T{% else %}F{% endif %}
      → "T" | "F" | "T"
    {% assign liquid = true %}{% if row.count %}T{% else %}F{% endif %}
      → "T" | "F" | "T"
    {% unless row.count %}F{% else %}T{% endunless %}
      → "T" | "F" | "T"
    {% if row.count or row.name %}T{% else %}F{% endif %}{% assign liquid = true %}
      → "T" | "F" | "T"
    {% if false and false or true %}T{% else %}F{% endif %}{% assign liquid = true %}
      → "F" | "F" | "F"
    {% if row.name %}T{% else %}F{% endif %}
      → "T" | "F" | "F"
    {% if row.count %}T{% else %}F{% endif %}
      → "T" | "F" | "F"
    {% if false and false or true %}T{% else %}F{% endif %}
      → "T" | "T" | "T"
    "#);
}

#[test]
fn email_filters() {
    let rows = model(vec![(
        "mail",
        strings(&[
            Some("Ada.L@Gmail.COM"),
            Some(" ops@acme-corp.io "),
            Some("user@yahoo.co.jp"),
            Some("weird@name@ProtonMail.com"),
            Some("no-at-sign"),
            Some("trailing@"),
            None,
        ]),
    )]);
    let cases = [
        "{{ row.mail | email_domain }}",
        "{{ row.mail | is_free_email }}",
        "{{ row.mail | email_domain | is_free_email }}",
        r#"{% if row.mail | is_free_email %}personal{% else %}work{% endif %}{% assign liquid = 1 %}"#,
        "{{ row.mail | email_domain | default: 'unknown' }}",
    ];
    insta::assert_snapshot!(render_all(&cases, &rows), @r#"
    {{ row.mail | email_domain }}
      → "gmail.com" | "acme-corp.io" | "yahoo.co.jp" | "protonmail.com" | <null> | <null> | <null>
    {{ row.mail | is_free_email }}
      → "true" | "false" | "true" | "true" | "false" | "false" | <null>
    {{ row.mail | email_domain | is_free_email }}
      → "true" | "false" | "true" | "true" | <null> | <null> | <null>
    {% if row.mail | is_free_email %}personal{% else %}work{% endif %}{% assign liquid = 1 %}
      → "personal" | "work" | "personal" | "personal" | "work" | "work" | "work"
    {{ row.mail | email_domain | default: 'unknown' }}
      → "gmail.com" | "acme-corp.io" | "yahoo.co.jp" | "protonmail.com" | "unknown" | "unknown" | "unknown"
    "#);
    // Bare domains, any case, and a trailing dot.
    assert_eq!(
        render_one("{{ 'Hotmail.com.' | is_free_email }}", &rows).as_deref(),
        Some("true")
    );
    assert_eq!(
        render_one("{{ 'example-corp.com' | is_free_email }}", &rows).as_deref(),
        Some("false")
    );
}

/// The guide's templates, with and without the null guard, verbatim and in Liquid filter
/// syntax (Census writes `date:`), over a null.
#[test]
fn hightouch_and_census_templates_in_liquid() {
    let rows = model(vec![(
        "col",
        strings(&[Some("2024-01-15T10:30:00Z"), None]),
    )]);
    let cases = [
        "{{ row['col'] | to_unix }}",
        "{%- if row['col'] == null -%}{{ null }}{%- else -%}{{ row['col'] | to_unix }}{%- endif -%}",
        "{%- if row['col'] == nil -%}{{ nil }}{%- else -%}{{ row['col'] | date: '%s' | times: 1000 }}{%- endif -%}",
        "{% if row.col != blank %}{{ row.col | date: \"%B %-d, %Y\" }}{% endif %}",
    ];
    insta::assert_snapshot!(render_all(&cases, &rows), @r#"
    {{ row['col'] | to_unix }}
      → error: cannot map property `out` of row `2`: to_unix: input is null
    {%- if row['col'] == null -%}{{ null }}{%- else -%}{{ row['col'] | to_unix }}{%- endif -%}
      → "1705314600000" | <null>
    {%- if row['col'] == nil -%}{{ nil }}{%- else -%}{{ row['col'] | date: '%s' | times: 1000 }}{%- endif -%}
      → "1705314600000" | <null>
    {% if row.col != blank %}{{ row.col | date: "%B %-d, %Y" }}{% endif %}
      → "January 15, 2024" | ""
    "#);
}

#[test]
fn liquid_errors_point_at_the_users_text() {
    let rows = model(vec![("at", strings(&[Some("2024-01-15")]))]);
    // A Liquid-style call of an unknown filter, after rewrites that shift columns
    // (`unless` → `if not (`, `contains`), on the second line of a block scalar at 21:9.
    let block = MappingSpec {
        property: loc("note", 20, 7),
        source: MappingSource::Template(loc(
            "{% unless row.at contains '-' %}\n  {{ row.at | truncat: 5 }}{{ row.at | upcase: 'x' }}\n{% endunless %}",
            21,
            9,
        )),
        on_null: OnNull::Keep,
    };
    insta::assert_snapshot!(compile_err(vec![block], &["id"], &rows), @r#"
    error[mapping::unknown_filter]: unknown filter `truncat` in the template for `note`
      --> syncs/contacts.yaml:22:23
      note: Liquid-compatible filters: to_unix, upcase, downcase, size, append, prepend, strip, lstrip, rstrip, plus, minus, times, divided_by, modulo, split, date, default, truncate, replace, email_domain, is_free_email; and minijinja's own filters
      hint: did you mean `truncate`?
    error[mapping::filter_arguments]: the filter `upcase` in the template for `note` is given one argument
      --> syncs/contacts.yaml:22:48
      hint: `upcase` takes no arguments
    "#);
    // A syntax error after a rewrite, and a Liquid form that is not supported.
    let out = compile_err(
        vec![
            template(
                "a",
                "{% if row.at contains '-' %}{{ row.at | append: }}{% endif %}",
                10,
            ),
            template("b", "{% assign n = 0 %}\n{% increment n %}", 12),
            template(
                "c",
                "{% for t in row.at | split: '-' limit: 2 %}{{ t }}{% endfor %}",
                14,
            ),
            template("d", "{{ row.at | date: '%Y' }}{{ row.nope | upcase }}", 16),
        ],
        &["id"],
        &rows,
    );
    insta::assert_snapshot!(out, @r#"
    error[mapping::filter_arguments]: the filter `append` in the template for `a` is given no arguments
      --> syncs/contacts.yaml:11:56
      hint: `append` takes one argument: `| append: "!"`
    error[mapping::template_syntax]: syntax error in the template for `b`: unknown statement increment
      --> syncs/contacts.yaml:14:19
      note: the template is read as Liquid (its tags and filter arguments are rewritten to minijinja's Jinja before it is compiled)
      hint: Liquid's `increment` is not supported: `{% set n = n + 1 %}`
    error[mapping::template_syntax]: syntax error in the template for `c`: unexpected identifier, expected `,`
      --> syncs/contacts.yaml:15:48
      note: the template is read as Liquid (its tags and filter arguments are rewritten to minijinja's Jinja before it is compiled)
      hint: `for` takes no `limit:`, `offset:` or `reversed`: slice or reverse the list, `{% for x in (row.tags | reverse)[1:3] %}`
    error[mapping::unknown_column]: `row` reads `nope` is not a column of the model `customers`
      --> syncs/contacts.yaml:17:44
      note: the model `customers` has the columns `id`, `email`, `at`
    "#);
}

/// A render error of a Liquid template names the sync, the property and the row, and its
/// line in the template is the user's line.
#[test]
fn liquid_render_errors_name_the_row_and_property() {
    let rows = model(vec![("at", strings(&[Some("2024-01-15"), Some("soon")]))]);
    let err = render(
        "{% assign d = row.at %}\n{% unless d == blank %}\n{{ d | date: '%Y' }}\n{% endunless %}",
        &rows,
    )
    .expect_err("`soon` is no date");
    insta::assert_snapshot!(show_diagnostics(&[err.to_diagnostic("contacts")]), @r#"
    error[mapping::render_failed]: cannot map property `out`: date: `soon` is not an ISO 8601 date or date-time (e.g. `2024-01-15` or `2024-01-15T10:30:00Z`) (template line 3)
      --> sync `contacts`, row `2`, field `out`
    "#);
}

// ---------------------------------------------------------------- compile diagnostics

#[test]
fn unknown_columns_with_did_you_mean() {
    let rows = model(vec![("first_name", strings(&[Some("Ada"), None]))]);
    let mut spec = sync(vec![
        column("firstname", "firstname", 10),
        template(
            "greeting",
            "Hi {{ row.frist_name }} <{{ row['Email'] }}>",
            12,
        ),
        column("zip", "postcode", 14),
    ]);
    spec.match_on.column = loc("emial", 7, 11);
    let diagnostics =
        SyncMapping::compile(&spec, &pk(&["idd"]), &rows.schema()).expect_err("unknown columns");
    insta::assert_snapshot!(show_diagnostics(&diagnostics), @r"
    error[mapping::unknown_column]: primary key column `idd` is not a column of the model `customers`
      --> syncs/contacts.yaml:30:16
      note: the model `customers` has the columns `id`, `email`, `first_name`
      hint: did you mean `id`?
    error[mapping::unknown_column]: `match.column` `emial` is not a column of the model `customers`
      --> syncs/contacts.yaml:7:11
      note: the model `customers` has the columns `id`, `email`, `first_name`
      hint: did you mean `email`?
    error[mapping::unknown_column]: `column` `firstname` is not a column of the model `customers`
      --> syncs/contacts.yaml:11:13
      note: the model `customers` has the columns `id`, `email`, `first_name`
      hint: did you mean `first_name`?
    error[mapping::unknown_column]: `row` reads `frist_name` is not a column of the model `customers`
      --> syncs/contacts.yaml:13:22
      note: the model `customers` has the columns `id`, `email`, `first_name`
      hint: did you mean `row.first_name`?
    error[mapping::unknown_column]: `row` reads `Email` is not a column of the model `customers`
      --> syncs/contacts.yaml:13:44
      note: the model `customers` has the columns `id`, `email`, `first_name`
      hint: did you mean `row.email`?
    error[mapping::unknown_column]: `column` `postcode` is not a column of the model `customers`
      --> syncs/contacts.yaml:15:13
      note: the model `customers` has the columns `id`, `email`, `first_name`
    ");
    let template_span = match &diagnostics[3].location {
        Some(engine_diag::Location::Source(span)) => span.clone(),
        other => panic!("unexpected location {other:?}"),
    };
    assert_eq!(template_span, span(13, 22, "row.frist_name".len()));
}

#[test]
fn template_syntax_error_points_into_the_file() {
    let rows = model(vec![]);
    // One line: the column is shifted by the template's own column (16).
    let one_line = compile_err(
        vec![template("score", "{{ row.id + }}", 10)],
        &["id"],
        &rows,
    );
    insta::assert_snapshot!(one_line, @r#"
    error[mapping::template_syntax]: syntax error in the template for `score`: unexpected end of variable block
      --> syncs/contacts.yaml:11:28
      note: templates are minijinja (Jinja) or Liquid syntax, with Liquid's filters
    "#);
    // A block scalar starting at line 21, column 9: the error on its third line.
    let block = MappingSpec {
        property: loc("note", 20, 7),
        source: MappingSource::Template(loc(
            "{% if row.id %}\n  {{ row.email }}\n{% cycle 'a', 'b' %}\n{% endif %}",
            21,
            9,
        )),
        on_null: OnNull::Keep,
    };
    insta::assert_snapshot!(compile_err(vec![block], &["id"], &rows), @r#"
    error[mapping::template_syntax]: syntax error in the template for `note`: unknown statement cycle
      --> syncs/contacts.yaml:23:12
      note: templates are minijinja (Jinja) or Liquid syntax, with Liquid's filters
      hint: Liquid's `cycle` is not supported: `{{ loop.cycle("odd", "even") }}` inside the loop
    "#);
    let colon = compile_err(
        vec![template("x", "{{ row.email : '!' }}", 10)],
        &["id"],
        &rows,
    );
    insta::assert_snapshot!(colon, @r#"
    error[mapping::template_syntax]: syntax error in the template for `x`: unexpected `:`, expected end of variable block
      --> syncs/contacts.yaml:11:29
      note: templates are minijinja (Jinja) or Liquid syntax, with Liquid's filters
      hint: a filter's arguments follow a colon right after its name (`| append: "!"`) or go in parentheses (`| append("!")`)
    "#);
    // Liquid's filter arguments are not a syntax error any more.
    assert_eq!(
        render_one("{{ row.email | append: '!' }}", &rows).as_deref(),
        Some("u1@example.com!")
    );
}

#[test]
fn unknown_filters_and_variables() {
    let rows = model(vec![]);
    let out = compile_err(
        vec![
            template("a", "{{ row.email | upcse }}", 10),
            template(
                "b",
                "{{ email }} {{ null }} {{ nil }} {% for i in range(2) %}{{ loop.index }}{% endfor %}",
                12,
            ),
            template("c", "{{ totally_unknown }}", 14),
        ],
        &["id"],
        &rows,
    );
    insta::assert_snapshot!(out, @r"
    error[mapping::unknown_filter]: unknown filter `upcse` in the template for `a`
      --> syncs/contacts.yaml:11:31
      note: Liquid-compatible filters: to_unix, upcase, downcase, size, append, prepend, strip, lstrip, rstrip, plus, minus, times, divided_by, modulo, split, date, default, truncate, replace, email_domain, is_free_email; and minijinja's own filters
      hint: did you mean `upcase`?
    error[mapping::unknown_variable]: unknown variable `email` in the template for `b`
      --> syncs/contacts.yaml:13:19
      hint: model columns are under `row`: did you mean `row.email`?
    error[mapping::unknown_variable]: unknown variable `totally_unknown` in the template for `c`
      --> syncs/contacts.yaml:15:19
      hint: model columns are under `row`, e.g. `row.email`; `null` and `nil` are none
    ");
}

#[test]
fn rebinding_row_skips_the_column_check() {
    let rows = model(vec![]);
    let mapping = compile(
        vec![template(
            "x",
            "{% for row in [{'q': 1}] %}{{ row.q }}{% endfor %}",
            10,
        )],
        &["id"],
        &rows,
    );
    assert_eq!(
        show(&mapping.map_batch(&rows.slice(0, 1)).expect("maps")).trim(),
        r#"__key="1" email="u1@example.com" x="1""#
    );
    // Raw blocks and comments are not scanned.
    compile(
        vec![template(
            "y",
            "{# row.nope #}{% raw %}{{ row.nope }}{% endraw %}",
            10,
        )],
        &["id"],
        &rows,
    );
}

#[test]
fn duplicate_reserved_and_missing_key() {
    let rows = model(vec![]);
    let mut spec = sync(vec![column("email", "email", 10), value("__key", "x", 12)]);
    spec.mapping.push(column("email", "id", 14));
    let diagnostics = SyncMapping::compile(&spec, &[], &rows.schema()).expect_err("invalid");
    insta::assert_snapshot!(show_diagnostics(&diagnostics), @r"
    error[mapping::no_primary_key]: the model `customers` of sync `contacts` has no primary key
      --> syncs/contacts.yaml:2:8
      hint: set `primary_key:` in the model to the column(s) that identify a row
    error[mapping::duplicate_property]: the property `email` is mapped twice in sync `contacts`
      --> syncs/contacts.yaml:10:7
      note: first mapped at syncs/contacts.yaml:6:13
      hint: the match property is always sent from `match.column`; remove this entry
    error[mapping::reserved_property]: the property name `__key` is reserved for the row key
      --> syncs/contacts.yaml:12:7
    error[mapping::duplicate_property]: the property `email` is mapped twice in sync `contacts`
      --> syncs/contacts.yaml:14:7
      note: first mapped at syncs/contacts.yaml:10:7
      hint: the match property is always sent from `match.column`; remove this entry
    ");
}

/// docs/errors.md sends users to docs/spec.md for the list of filters, which it did not have.
#[test]
fn the_spec_documents_every_filter() {
    let spec = include_str!("../../../docs/spec.md");
    let missing: Vec<&str> = crate::filters::LIQUID_FILTERS
        .iter()
        .chain(crate::filters::BUILTIN_FILTERS)
        .copied()
        .filter(|name| {
            ["`", "(", ":"]
                .iter()
                .all(|after| !spec.contains(&format!("`{name}{after}")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/spec.md does not list the filters {missing:?}"
    );
}
