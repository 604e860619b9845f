use crate::*;

fn sample() -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        plan_id: "p".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        engine_version: "0.1.0".into(),
        project: "demo".into(),
        lineage: "l".into(),
        digest: String::new(),
        syncs: vec![SyncPlan {
            sync: "contacts".into(),
            model: "users".into(),
            destination: "hubspot".into(),
            object: "contacts".into(),
            base_generation: 2,
            properties: vec!["email".into(), "firstname".into(), "phone".into()],
            match_property: "email".into(),
            clear_on_null: vec![],
            on_remove: RemoveBehaviour::ClearFields,
            mode: WriteMode::Upsert,
            rows_are: RowsAre::Records,
            match_case_insensitive: false,
            skipped: vec![],
            held: vec![],
            summary: Summary {
                model_rows: 3,
                previous_rows: 3,
                create: 1,
                update: 1,
                remove: 1,
                unchanged: 1,
                retried: 0,
                ..Summary::default()
            },
            guards: vec![GuardCheck {
                guard: "max_deletes".into(),
                limit: 0.0,
                actual: 1.0,
                breached: true,
            }],
            changes: vec![
                RowChange {
                    action: Action::Create,
                    key: "4".into(),
                    destination_id: None,
                    fields: vec![FieldChange {
                        property: "email".into(),
                        before: None,
                        after: Some("d@x.io".into()),
                    }],
                    values: Some(vec![Some("d@x.io".into()), None, None]),
                    last_error: None,
                    ..RowChange::default()
                },
                RowChange {
                    action: Action::Update,
                    key: "2".into(),
                    destination_id: Some("102".into()),
                    fields: vec![
                        FieldChange {
                            property: "firstname".into(),
                            before: Some("Bob".into()),
                            after: Some("Robert".into()),
                        },
                        FieldChange {
                            property: "phone".into(),
                            before: Some("1".into()),
                            after: None,
                        },
                    ],
                    values: Some(vec![Some("b@x.io".into()), Some("Robert".into()), None]),
                    last_error: Some("bad".into()),
                    ..RowChange::default()
                },
                RowChange {
                    action: Action::Remove,
                    key: "3".into(),
                    destination_id: Some("103".into()),
                    fields: vec![FieldChange {
                        property: "firstname".into(),
                        before: Some("Cy".into()),
                        after: None,
                    }],
                    values: None,
                    last_error: None,
                    ..RowChange::default()
                },
            ]
            .into(),
        }],
    }
}

#[test]
fn human_view_shows_each_change_with_before_and_after() {
    insta::assert_snapshot!(render_human(&sample(), HumanOptions::default()), @r#"
    sync `contacts`: model `users` → hubspot `contacts` (generation 2)
      + create "4"
          email: "d@x.io"
      ~ update "2" (id 102)
          # retry: last attempt failed: bad
          firstname: "Bob" → "Robert"
          phone:     "1" → null (kept in the destination)
      - remove "3" (id 103): clear fields
          firstname: "Cy" → ""
      ! guard `max_deletes` breached: 1 is over the limit 0; apply will refuse unless run with `--override-guards`
      1 to create, 1 to update, 1 to remove, 1 unchanged

    Plan: 1 to create, 1 to update, 1 to remove.
    "#);
}

#[test]
fn long_lists_are_elided_with_a_count() {
    let text = render_human(&sample(), HumanOptions { max_rows: 1 });
    assert!(text.contains("… and 2 more changes"), "{text}");
}

#[test]
fn json_round_trips_and_version_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    sample()
        .write_json(fs_err::File::create(&path).unwrap())
        .unwrap();
    let read = Plan::read(&path, dir.path()).unwrap();
    assert_eq!(
        read.syncs[0].changes.files().len(),
        1,
        "changes of a saved plan are streamed to a file"
    );
    assert_eq!(in_memory(read), sample());
    fs_err::write(&path, r#"{"format_version": 99}"#).unwrap();
    assert!(matches!(
        Plan::read(&path, dir.path()),
        Err(PlanFileError::Version { found: 99, .. })
    ));
    fs_err::write(&path, "not json").unwrap();
    assert!(matches!(
        Plan::read(&path, dir.path()),
        Err(PlanFileError::Parse { .. })
    ));
}

#[test]
fn a_sealed_plan_verifies_and_any_edit_or_other_key_breaks_the_seal() {
    let key = [7u8; 32];
    let mut plan = sample();
    plan.seal(&key);
    assert!(plan.seal_holds(&key));
    assert!(!plan.seal_holds(&[8u8; 32]), "another state's key");

    // A round trip through the saved JSON, changes through a change file, keeps the seal.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    plan.write_json(fs_err::File::create(&path).unwrap())
        .unwrap();
    let read = Plan::read(&path, dir.path()).unwrap();
    assert!(read.seal_holds(&key));

    let mut edited = plan.clone();
    let mut changes = edited.syncs[0].changes.to_vec().unwrap();
    changes[0].values = Some(vec![Some("evil@x.io".into()), None, None]);
    edited.syncs[0].changes = changes.into();
    assert!(!edited.seal_holds(&key));
    let mut renamed = plan.clone();
    renamed.syncs[0].sync = "../../x".into();
    assert!(!renamed.seal_holds(&key));
    let mut unsealed = plan;
    unsealed.digest.clear();
    assert!(!unsealed.seal_holds(&key));
}

#[test]
fn a_saved_plan_file_is_verified_from_its_bytes_and_any_other_file_the_slow_way() {
    let key = [7u8; 32];
    let mut plan = sample();
    plan.seal(&key);
    let dir = tempfile::tempdir().unwrap();
    let read_sealed = |name: &str, bytes: &[u8], key: &[u8; 32]| {
        let path = dir.path().join(name);
        fs_err::write(&path, bytes).unwrap();
        let changes = dir.path().join(format!("{name}.changes"));
        fs_err::create_dir_all(&changes).unwrap();
        // The verdict from the file's bytes alone, and the answer `read_sealed` gives.
        let mut file_seal = crate::seal::FileSeal::new(key);
        std::io::Write::write_all(&mut file_seal, bytes).unwrap();
        let verdict = file_seal.verdict();
        let (read, holds) = Plan::read_sealed(&path, &changes, key).unwrap();
        (verdict, holds, read)
    };

    // As `engine plan --out` writes it: verified from its bytes.
    let mut compact = Vec::new();
    plan.write_compact_json(&mut compact).unwrap();
    let (verdict, holds, read) = read_sealed("compact.json", &compact, &key);
    assert_eq!((verdict, holds), (Some(true), true));
    assert_eq!(in_memory(read), in_memory(plan.clone()));
    assert!(!read_sealed("other-key.json", &compact, &[8u8; 32]).1);

    // One value changed in the file: the bytes say no, and so does the slow check.
    let text = String::from_utf8(compact.clone()).unwrap();
    let edited = text.replacen("\"Robert\"", "\"Mallory\"", 1);
    assert_ne!(edited, text, "the sample plan holds Robert");
    let (verdict, holds, _) = read_sealed("edited.json", edited.as_bytes(), &key);
    assert_eq!((verdict, holds), (Some(false), false));

    // The same plan pretty-printed: no verdict from the bytes, sealed all the same.
    let mut pretty = Vec::new();
    plan.write_json(&mut pretty).unwrap();
    let (verdict, holds, _) = read_sealed("pretty.json", &pretty, &key);
    assert_eq!((verdict, holds), (None, true));

    // Saved in one pass: the same bytes as sealing first and writing after.
    let saved = dir.path().join("saved.json");
    let mut unsealed = plan.clone();
    unsealed.digest.clear();
    unsealed.save_sealed(&saved, &key).unwrap();
    assert_eq!(unsealed.digest, plan.digest);
    assert_eq!(fs_err::read(&saved).unwrap(), compact);
    assert!(!dir.path().join("saved.tmp").exists());

    // Written in small pieces, as a reader hands them over, the verdict is the same.
    let mut file_seal = crate::seal::FileSeal::new(&key);
    for piece in compact.chunks(7) {
        std::io::Write::write_all(&mut file_seal, piece).unwrap();
    }
    assert_eq!(file_seal.verdict(), Some(true));
}

#[test]
fn a_saved_plan_has_one_change_per_line_and_reads_back_line_by_line() {
    let key = [7u8; 32];
    let mut plan = sample();
    // A second sync with no change, and a first one whose key and values need escaping.
    let mut second = plan.syncs[0].clone();
    second.sync = "empty".into();
    second.changes = ChangeSet::default();
    let mut changes = plan.syncs[0].changes.to_vec().unwrap();
    changes[0].key = "line\nbreak \"changes\":[".into();
    plan.syncs[0].changes = changes.clone().into();
    plan.syncs.push(second);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.json");
    plan.save_sealed(&path, &key).unwrap();

    let text = fs_err::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("\"changes\":["), "{text}");
    let change_lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("{\"action\"") || l.starts_with(",{\"action\""))
        .collect();
    assert_eq!(change_lines.len(), changes.len(), "{text}");
    assert_eq!(lines.len(), 1 + changes.len() + 2, "{text}");
    let as_json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(as_json["syncs"][0]["changes"].as_array().unwrap().len(), 3);

    // Read line by line: every field back, the seal verified from the bytes.
    let changes_dir = dir.path().join("changes");
    fs_err::create_dir_all(&changes_dir).unwrap();
    let file = std::io::BufReader::new(fs_err::File::open(&path).unwrap());
    let mut file_seal = crate::seal::FileSeal::new(&key);
    let read = crate::saved::read_lines(
        file,
        crate::saved::Changes::WriteTo(&changes_dir),
        &mut file_seal,
    )
    .unwrap()
    .expect("the engine's own layout is read line by line");
    assert_eq!(file_seal.verdict(), Some(true));
    assert_eq!(in_memory(read), in_memory(plan.clone()));
    let (_, holds) = Plan::read_sealed(&path, &changes_dir, &key).unwrap();
    assert!(holds);

    // The same document on one line (as an earlier engine saved it) or pretty-printed is not
    // this layout: it is parsed as a stream, and its seal still holds.
    for (name, bytes) in [
        ("one-line.json", serde_json::to_vec(&plan).unwrap()),
        ("pretty.json", serde_json::to_vec_pretty(&plan).unwrap()),
    ] {
        let other = dir.path().join(name);
        fs_err::write(&other, &bytes).unwrap();
        let file = std::io::BufReader::new(fs_err::File::open(&other).unwrap());
        let layout = crate::saved::read_lines(
            file,
            crate::saved::Changes::WriteTo(&changes_dir),
            std::io::sink(),
        )
        .unwrap();
        assert!(layout.is_none(), "{name}");
        let (read, holds) = Plan::read_sealed(&other, &changes_dir, &key).unwrap();
        assert!(holds, "{name}");
        assert_eq!(in_memory(read), in_memory(plan.clone()), "{name}");
    }

    // A change line edited so that it no longer parses is reported where it is.
    let broken = text.replacen(",{\"action\"", ",{\"acti", 1);
    let other = dir.path().join("broken.json");
    fs_err::write(&other, &broken).unwrap();
    let error = Plan::read(&other, &changes_dir).unwrap_err().to_string();
    assert!(error.contains("line 3"), "{error}");
}

/// The plan with every change set read into memory, to compare with one built in memory.
fn in_memory(mut plan: Plan) -> Plan {
    for sync in &mut plan.syncs {
        sync.changes = sync.changes.to_vec().unwrap().into();
    }
    plan
}

#[test]
fn change_files_round_trip_every_field_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part.parquet");
    let mut writer = ChangeWriter::create(&path).unwrap();
    let mut all = Vec::new();
    for i in 0..(CHUNK_ROWS + 7) {
        let change = RowChange {
            action: [Action::Create, Action::Update, Action::Remove][i % 3],
            key: format!("k{i}"),
            destination_id: (i % 2 == 0).then(|| i.to_string()),
            fields: vec![FieldChange {
                property: "email".into(),
                before: (i % 5 == 0).then(|| "old".into()),
                after: (i % 3 != 2).then(|| format!("{i}@x")),
            }],
            values: (i % 3 != 2).then(|| vec![Some(format!("{i}@x")), None, Some(String::new())]),
            last_error: (i % 7 == 0).then(|| "no".into()),
            rekeyed_from: (i % 11 == 0).then(|| "r".into()),
            vacated_by: (i % 13 == 0).then(|| "v".into()),
            wave: (i % 4) as u32,
        };
        writer.push(&change).unwrap();
        all.push(change);
    }
    assert_eq!(writer.finish().unwrap(), all.len() as u64);
    let set = ChangeSet::from_files(vec![path], all.len() as u64);
    let mut chunks = 0;
    set.for_each_chunk(|chunk| {
        assert!(chunk.len() <= CHUNK_ROWS);
        chunks += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(chunks, 2);
    assert_eq!(set.to_vec().unwrap(), all);
    assert_eq!(set.first(3).unwrap(), all[..3].to_vec());
    // Read without their field lists, the changes are the same but for `fields`.
    let mut without: Vec<RowChange> = Vec::new();
    for chunk in set.chunks_without_fields() {
        without.extend(chunk.unwrap());
    }
    let cleared: Vec<RowChange> = all
        .iter()
        .map(|c| RowChange {
            fields: Vec::new(),
            ..c.clone()
        })
        .collect();
    assert_eq!(without, cleared);
    // The outline counts actions and finds the (action, wave) groups from two columns.
    let outline = set.outline().unwrap();
    assert_eq!(outline, ChangeSet::from(all.clone()).outline().unwrap());
    assert_eq!(
        (outline.create, outline.update, outline.remove),
        (1368, 1368, 1367)
    );
    assert_eq!(outline.groups.len(), 12);
    // Re-keys read from two columns only are the ones the full rows hold.
    let rekeys = set.rekeys().unwrap();
    assert_eq!(rekeys, ChangeSet::from(all.clone()).rekeys().unwrap());
    assert_eq!(
        rekeys.len(),
        all.iter().filter(|c| c.rekeyed_from.is_some()).count()
    );
    assert!(!rekeys.is_empty());
    assert_eq!(
        serde_json::to_string(&set).unwrap(),
        serde_json::to_string(&all).unwrap()
    );
}
