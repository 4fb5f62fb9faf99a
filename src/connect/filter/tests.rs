//! Tests of SCIM filters: parsing, matching, and the forms Connect rejects.

use super::*;

struct Thing {
    title: &'static str,
    tags: Vec<&'static str>,
}

impl Attributes for Thing {
    fn any_value(&self, attr: &str, test: &mut dyn FnMut(&str) -> bool) -> bool {
        match attr {
            "title" => test(self.title),
            "tag" => self.tags.iter().any(|t| test(t)),
            _ => false,
        }
    }
}

fn thing() -> Thing {
    Thing {
        title: "Production Postgres",
        tags: vec!["db", "Prod"],
    }
}

#[test]
fn eq_ignores_case() {
    let f = parse(r#"title eq "production POSTGRES""#).expect("parses");
    assert!(f.matches(&thing()));
    assert!(
        !parse(r#"title eq "production""#)
            .expect("parses")
            .matches(&thing())
    );
}

#[test]
fn co_and_sw() {
    assert!(
        parse(r#"title co "POST""#)
            .expect("parses")
            .matches(&thing())
    );
    assert!(
        parse(r#"title sw "prod""#)
            .expect("parses")
            .matches(&thing())
    );
    assert!(
        !parse(r#"title sw "post""#)
            .expect("parses")
            .matches(&thing())
    );
}

#[test]
fn multi_valued_tags() {
    assert!(parse(r#"tag eq "prod""#).expect("parses").matches(&thing()));
    assert!(
        !parse(r#"tag eq "staging""#)
            .expect("parses")
            .matches(&thing())
    );
}

#[test]
fn and_binds_tighter_than_or() {
    let f = parse(r#"tag eq "none" and title co "x" or tag eq "db""#).expect("parses");
    assert!(f.matches(&thing()));
    let g = parse(r#"tag eq "none" and (title co "x" or tag eq "db")"#).expect("parses");
    assert!(!g.matches(&thing()));
}

#[test]
fn keywords_are_case_insensitive() {
    assert!(parse(r#"title EQ "a" AND tag Co "b""#).is_ok());
}

#[test]
fn refuses_bad_input() {
    assert_eq!(parse(""), Err(FilterError::Empty));
    assert_eq!(parse("   "), Err(FilterError::Empty));
    assert_eq!(parse(r#"title eq "it's""#), Err(FilterError::SingleQuote));
    assert_eq!(parse("title eq 'x'"), Err(FilterError::SingleQuote));
    assert!(matches!(
        parse(r#"title eq "x"#),
        Err(FilterError::Unterminated { .. })
    ));
    assert!(matches!(
        parse(r#"title zz "x""#),
        Err(FilterError::UnknownOperator { .. })
    ));
    assert!(matches!(
        parse("title eq x"),
        Err(FilterError::Expected { .. })
    ));
    assert!(matches!(
        parse(r#"title eq "x" junk"#),
        Err(FilterError::Trailing { .. })
    ));
    assert!(matches!(
        parse(r#"(title eq "x""#),
        Err(FilterError::Expected { .. })
    ));
    assert!(matches!(parse("title"), Err(FilterError::Expected { .. })));
    let deep = format!("{}title eq \"x\"{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(parse(&deep), Err(FilterError::TooDeep));
}

#[test]
fn attributes_are_checked() {
    let f = parse(r#"name eq "x" or title eq "y""#).expect("parses");
    assert!(f.check_attributes(&["name", "title"]).is_ok());
    assert!(matches!(
        f.check_attributes(&["title"]),
        Err(FilterError::UnsupportedAttribute { .. })
    ));
}

#[test]
fn builder_round_trips() {
    let f = Filter::title_eq(r#"say "hi" \o/"#).or(Filter::tag_eq("x").and(Filter::title_co("y")));
    let back = parse(&f.to_string()).expect("parses its own output");
    assert_eq!(back, f);
    assert_eq!(Filter::title_eq("Demo").to_string(), r#"title eq "Demo""#);
}
