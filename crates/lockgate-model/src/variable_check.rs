//! The VariableCheck rule's decision, a pure function of its configuration and the execution's
//! variables: `Variable` (a reference such as `#{SourceVariables.BranchName}`) is resolved and
//! compared with `Value` by `Operator`:
//!
//! - `EQ` / `NE`: the strings are (not) equal;
//! - `CONTAINS`: the variable's value contains `Value`;
//! - `MATCHES`: the whole value matches the regular expression `Value` (as Java's
//!   `String.matches`, which CodePipeline uses; the `regex` crate's syntax, so no look-around or
//!   back-references);
//! - `GREATER_THAN` / `LESS_THAN`: both sides read as numbers.
//!
//! A reference that does not resolve, a `Value` that is not a valid expression or number, and an
//! unknown operator fail the rule with a message that says which.

use std::collections::BTreeMap;

use crate::variables::{resolve, Variables};

/// What a rule decided, with the summary shown for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The rule's check holds.
    Passed(String),
    /// It does not, or it could not be made.
    Failed(String),
}

/// Decides a VariableCheck rule with `configuration` over `variables`.
pub fn variable_check(
    configuration: &BTreeMap<String, String>,
    variables: &impl Variables,
) -> Verdict {
    let get = |key: &str| {
        configuration
            .get(key)
            .map(String::as_str)
            .unwrap_or_default()
    };
    let (variable, operator) = (get("Variable"), get("Operator"));
    let actual = match resolve(variable, variables) {
        Ok(value) => value,
        Err(unresolved) => {
            return Verdict::Failed(format!(
                "The Variable {variable} refers to {}, which this execution has not produced",
                unresolved.0
            ))
        }
    };
    let expected = match resolve(get("Value"), variables) {
        Ok(value) => value,
        Err(unresolved) => {
            return Verdict::Failed(format!(
                "The Value refers to {}, which this execution has not produced",
                unresolved.0
            ))
        }
    };
    let holds = match operator {
        "EQ" => Ok(actual == expected),
        "NE" => Ok(actual != expected),
        "CONTAINS" => Ok(actual.contains(&expected)),
        "MATCHES" => regex::Regex::new(&format!("^(?:{expected})$"))
            .map(|re| re.is_match(&actual))
            .map_err(|e| format!("The Value {expected:?} is not a regular expression: {e}")),
        "GREATER_THAN" | "LESS_THAN" => numbers(&actual, &expected).map(|(a, e)| {
            if operator == "GREATER_THAN" {
                a > e
            } else {
                a < e
            }
        }),
        other => Err(format!(
            "The operator {other:?} is not one VariableCheck knows"
        )),
    };
    match holds {
        Ok(true) => Verdict::Passed(format!(
            "{variable} is {actual:?}: {operator} {expected:?} holds"
        )),
        Ok(false) => Verdict::Failed(format!(
            "{variable} is {actual:?}: {operator} {expected:?} does not hold"
        )),
        Err(message) => Verdict::Failed(message),
    }
}

/// Both sides as numbers, or why not.
fn numbers(actual: &str, expected: &str) -> Result<(f64, f64), String> {
    let number = |side: &str, text: &str| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("The {side} {text:?} is not a number"))
    };
    Ok((
        number("variable's value", actual)?,
        number("Value", expected)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variables::ExecutionVariables;

    fn variables() -> ExecutionVariables {
        ExecutionVariables {
            execution_id: "e-1".into(),
            pipeline: BTreeMap::from([("Release".into(), "yes".into())]),
            actions: BTreeMap::from([(
                "Build".into(),
                BTreeMap::from([
                    ("VERSION".into(), "1.4.2".into()),
                    ("COVERAGE".into(), "87.5".into()),
                ]),
            )]),
        }
    }

    fn check(variable: &str, operator: &str, value: &str) -> Verdict {
        let configuration = BTreeMap::from([
            ("Variable".to_string(), variable.to_string()),
            ("Operator".to_string(), operator.to_string()),
            ("Value".to_string(), value.to_string()),
        ]);
        variable_check(&configuration, &variables())
    }

    fn passes(variable: &str, operator: &str, value: &str) -> bool {
        matches!(check(variable, operator, value), Verdict::Passed(_))
    }

    #[test]
    fn each_operator_compares_as_the_rule_reference_says() {
        assert!(passes("#{variables.Release}", "EQ", "yes"));
        assert!(!passes("#{variables.Release}", "EQ", "no"));
        assert!(passes("#{variables.Release}", "NE", "no"));
        assert!(passes("#{Build.VERSION}", "CONTAINS", ".4."));
        assert!(passes("#{Build.VERSION}", "MATCHES", r"\d+\.\d+\.\d+"));
        // The whole value must match, as Java's String.matches.
        assert!(!passes("#{Build.VERSION}", "MATCHES", r"\d+\.\d+"));
        assert!(passes("#{Build.COVERAGE}", "GREATER_THAN", "80"));
        assert!(!passes("#{Build.COVERAGE}", "LESS_THAN", "80"));
        assert!(passes(
            "#{Build.COVERAGE}",
            "LESS_THAN",
            "#{Build.COVERAGE}1"
        ));
    }

    #[test]
    fn what_cannot_be_compared_fails_the_rule_and_says_why() {
        assert_eq!(
            check("#{Build.VERSION}", "GREATER_THAN", "1"),
            Verdict::Failed("The variable's value \"1.4.2\" is not a number".into())
        );
        assert_eq!(
            check("#{Deploy.URL}", "EQ", "x"),
            Verdict::Failed(
                "The Variable #{Deploy.URL} refers to #{Deploy.URL}, which this execution has not \
                 produced"
                    .into()
            )
        );
        let Verdict::Failed(message) = check("#{Build.VERSION}", "MATCHES", "(") else {
            panic!("a broken expression fails the rule");
        };
        assert!(
            message.starts_with("The Value \"(\" is not a regular expression"),
            "{message}"
        );
        assert_eq!(
            check("#{Build.VERSION}", "LIKE", "1"),
            Verdict::Failed("The operator \"LIKE\" is not one VariableCheck knows".into())
        );
    }

    #[test]
    fn the_summary_says_what_was_compared() {
        assert_eq!(
            check("#{variables.Release}", "EQ", "yes"),
            Verdict::Passed("#{variables.Release} is \"yes\": EQ \"yes\" holds".into())
        );
    }
}
