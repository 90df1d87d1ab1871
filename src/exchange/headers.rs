//! Headers-exchange matching: x-match all | any | all-with-x | any-with-x.
//! Binding arguments starting with "x-" take part only in the -with-x modes;
//! a binding value of type void matches the mere presence of the header.

use amq_protocol::types::{AMQPValue, FieldTable};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XMatch {
    All,
    Any,
    AllWithX,
    AnyWithX,
}

/// The x-match of a binding; `Err` carries RabbitMQ's complaint.
pub fn x_match(args: &FieldTable) -> Result<XMatch, String> {
    match args.inner().get("x-match") {
        None => Ok(XMatch::All),
        Some(AMQPValue::LongString(s)) => parse(std::str::from_utf8(s.as_bytes()).unwrap_or("")),
        Some(AMQPValue::ShortString(s)) => parse(s.as_str()),
        Some(_) => Err("Invalid x-match field type".into()),
    }
}

fn parse(s: &str) -> Result<XMatch, String> {
    match s {
        "all" => Ok(XMatch::All),
        "any" => Ok(XMatch::Any),
        "all-with-x" => Ok(XMatch::AllWithX),
        "any-with-x" => Ok(XMatch::AnyWithX),
        other => Err(format!(
            "Invalid x-match field value \"{other}\"; expected all, any, all-with-x, or any-with-x"
        )),
    }
}

pub fn matches(mode: XMatch, binding: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let with_x = matches!(mode, XMatch::AllWithX | XMatch::AnyWithX);
    let all = matches!(mode, XMatch::All | XMatch::AllWithX);
    let empty = FieldTable::default();
    let headers = headers.unwrap_or(&empty).inner();
    for (k, want) in binding.inner() {
        if k.as_str() == "x-match" || (!with_x && k.as_str().starts_with("x-")) {
            continue;
        }
        let hit = match (want, headers.get(k)) {
            (_, None) => false,
            (AMQPValue::Void, Some(_)) => true,
            (w, Some(h)) => value_eq(w, h),
        };
        if all && !hit {
            return false;
        }
        if !all && hit {
            return true;
        }
    }
    all
}

/// Equality that ignores integer width and short/long string type, since
/// clients encode the same value differently.
fn value_eq(a: &AMQPValue, b: &AMQPValue) -> bool {
    match (crate::field::int(a), crate::field::int(b)) {
        (Some(x), Some(y)) => return x == y,
        (Some(_), None) | (None, Some(_)) => return false,
        _ => {}
    }
    match (crate::field::text(a), crate::field::text(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn s(v: &str) -> AMQPValue {
        AMQPValue::LongString(v.into())
    }

    #[test]
    fn all_any_and_with_x() {
        let b = table(&[("a", s("1")), ("b", AMQPValue::LongInt(2))]);
        let h_full = table(&[("a", s("1")), ("b", AMQPValue::ShortShortUInt(2))]);
        let h_half = table(&[("a", s("1"))]);
        assert!(matches(XMatch::All, &b, Some(&h_full)));
        assert!(!matches(XMatch::All, &b, Some(&h_half)));
        assert!(matches(XMatch::Any, &b, Some(&h_half)));
        assert!(!matches(XMatch::Any, &b, None));
        assert!(matches(XMatch::All, &FieldTable::default(), None));
        let bx = table(&[("x-k", s("v"))]);
        let hx = table(&[("x-k", s("v"))]);
        assert!(!matches(XMatch::Any, &bx, Some(&hx)));
        assert!(matches(XMatch::AnyWithX, &bx, Some(&hx)));
        assert!(!matches(XMatch::AllWithX, &bx, None));
        let void = table(&[("p", AMQPValue::Void)]);
        assert!(matches(
            XMatch::All,
            &void,
            Some(&table(&[("p", s("anything"))]))
        ));
    }

    #[test]
    fn x_match_validation() {
        assert_eq!(x_match(&table(&[("x-match", s("any"))])), Ok(XMatch::Any));
        assert!(x_match(&table(&[("x-match", s("some"))])).is_err());
    }
}
