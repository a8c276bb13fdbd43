"""Every AWS call the functions made during the test run, against the IAM policies of the
templates as SAM translates them.

    python3 check_calls.py CALLS_LOG [CALLS_LOG ...]

record_calls.py wrote the calls, one JSON line each, with the caller's access key id: the tests
give auth-api's clients the key `authapi`, and run each release binary with its function name
as its key, dashes left out (`authapi`, `authorizer`, `sessionauthorizer`, `events`). Calls under any other key are the
tests' own (creating tables, putting parameters, the operator's auth-admin) and are counted,
not checked.

Each function's calls are evaluated against the inline policies of that function's role in:
- template.yaml with its defaults (mail off: no mail call can happen there, so none is checked);
- template.yaml with CheckSessions=true and mail on;
- template-http-api.yaml with mail on.
The evaluation follows IAM's rules (an explicit Deny wins, else an Allow whose action,
resource and conditions match, else denied), with `*`/`?` wildcards, case-insensitive actions,
and the condition operators and set qualifiers the templates use. moto's own IAM evaluator
gives a second opinion on actions and resources. One denied call fails the run and is named,
with the statements that name its action and why each did not match.

Also run with --self-test: the evaluator's own cases.
"""

import json
import logging
import os
import re
import sys
from collections import defaultdict

# samtranslator's own notices (feature toggles, metrics) are not this check's output.
logging.disable(logging.WARNING)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sam"))

ACCOUNT = "123456789012"
REGION = "us-east-1"
TABLE = "users-table"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": "auth",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()


# --- IAM evaluation -------------------------------------------------------------------------

def wildcard(pattern, value, ignore_case=False):
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def as_list(value):
    return value if isinstance(value, list) else [value]


def string_op(op, wanted, actual):
    if op in ("StringEquals", "ArnEquals"):
        return actual == wanted
    if op == "StringEqualsIgnoreCase":
        return actual.lower() == wanted.lower()
    if op in ("StringLike", "ArnLike"):
        return wildcard(wanted, actual)
    if op == "Bool":
        return actual.lower() == str(wanted).lower()
    raise ValueError(f"condition operator {op} is not supported by this evaluator")


NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike",
           "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase", "ArnNotEquals": "ArnEquals",
           "ArnNotLike": "ArnLike"}


def condition_holds(operator, key, wanted, context):
    """One condition key of one operator block, as IAM evaluates it."""
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    values = {k.lower(): v for k, v in context.items()}.get(key.lower())
    present = values is not None and values != []
    if op == "Null":
        return (not present) == (str(as_list(wanted)[0]).lower() == "true")
    negated = op in NEGATED
    base = NEGATED.get(op, op)
    wanted = [str(w) for w in as_list(wanted)]
    actual = [str(v) for v in as_list(values)] if present else []

    def matches(value):
        hit = any(string_op(base, w, value) for w in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(matches(v) for v in actual)
    if qualifier == "ForAnyValue":
        return any(matches(v) for v in actual)
    if not present:
        return if_exists or negated
    return any(matches(v) for v in actual)


def statement_verdict(statement, action, resource, context):
    """(applies, why not) for one statement."""
    if "Action" in statement:
        if not any(wildcard(a, action, True) for a in as_list(statement["Action"])):
            return False, "action not listed"
    elif "NotAction" in statement:
        if any(wildcard(a, action, True) for a in as_list(statement["NotAction"])):
            return False, "action excluded by NotAction"
    if "Resource" in statement:
        if not any(wildcard(r, resource) for r in as_list(statement["Resource"])):
            return False, f"resource {resource} not in {as_list(statement['Resource'])}"
    elif "NotResource" in statement:
        if any(wildcard(r, resource) for r in as_list(statement["NotResource"])):
            return False, "resource excluded by NotResource"
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not condition_holds(operator, key, wanted, context):
                return False, f"condition {operator} {key} {wanted} does not hold for {context.get(key)}"
    return True, ""


def evaluate(policies, action, resource, context):
    """("allowed", sid) or ("denied", reasons): IAM's identity-policy evaluation."""
    allowed_by = None
    reasons = []
    for name, document in policies:
        for statement in as_list(document.get("Statement", [])):
            applies, why = statement_verdict(statement, action, resource, context)
            sid = f"{name}/{statement.get('Sid', '(no Sid)')}"
            if applies and statement.get("Effect") == "Deny":
                return "denied", [f"explicitly denied by {sid}"]
            if applies and statement.get("Effect") == "Allow":
                allowed_by = allowed_by or sid
            elif why != "action not listed":
                reasons.append(f"{sid}: {why}")
    if allowed_by:
        return "allowed", allowed_by
    return "denied", reasons or ["no statement names this action"]


def moto_permits(policies, action, resource):
    """moto's IAM evaluator on the same policies, conditions left out (it evaluates few)."""
    try:
        from moto.iam.access_control import IAMPolicy, PermissionResult
    except ImportError:
        return None
    for _, document in policies:
        stripped = dict(document)
        stripped["Statement"] = [
            {k: v for k, v in s.items() if k != "Condition"} for s in as_list(document["Statement"])
        ]
        if IAMPolicy(json.dumps(stripped)).is_action_permitted(action, resource) == PermissionResult.PERMITTED:
            return True
    return False


# --- The translated template's intrinsics ---------------------------------------------------

class Resolver:
    def __init__(self, template, parameters):
        self.template = template
        self.parameters = {}
        for name, spec in template.get("Parameters", {}).items():
            if "Default" in spec:
                self.parameters[name] = str(spec["Default"])
        self.parameters.update(parameters)
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name):
        if name in PSEUDO:
            return PSEUDO[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name == "UsersTable":
            return TABLE
        return name

    def get_att(self, resource, attribute):
        if (resource, attribute) == ("UsersTable", "Arn"):
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
        return f"arn:aws:::{resource}.{attribute}"

    def sub(self, text, variables):
        def one(match):
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))
        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def value(self, node):
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(*parts)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(arg[0], {k: self.value(v) for k, v in arg[1].items()})
                return self.sub(arg, {})
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                a, b = (self.value(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(x) for x in arg)
            if key == "Fn::Or":
                return any(self.value(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1]))
            if key == "Fn::Split":
                return str(self.value(arg[1])).split(arg[0])
            if key == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}


def role_policies(template, parameters, function):
    """The inline policies of `function`'s role, resolved; None if the function is not deployed."""
    resolver = Resolver(template, parameters)
    resources = template["Resources"]
    spec = resources.get(function)
    if spec is None or ("Condition" in spec and not resolver.condition(spec["Condition"])):
        return None
    role = spec["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = resolver.value(resources[role]["Properties"].get("Policies", []))
    return [(p["PolicyName"], p["PolicyDocument"]) for p in policies]


# --- The run ---------------------------------------------------------------------------------

FUNCTIONS = {"authapi": "AuthApiFunction", "authorizer": "AuthorizerFunction",
             "sessionauthorizer": "SessionAuthorizerFunction", "events": "EventsFunction"}
SENDER = "mail@example.com"


def deployments(jwks):
    """(label, template path, parameters, whether it sends mail)."""
    mail = {"SesFromAddress": SENDER, "AppUrlTemplate": "https://app.example.com/{action}#token={token}"}
    return [
        ("template.yaml, defaults", "template.yaml", {"PublicJwks": jwks}, False),
        ("template.yaml, CheckSessions=true, mail on", "template.yaml",
         {"PublicJwks": jwks, "CheckSessions": "true", **mail}, True),
        ("template-http-api.yaml, mail on", "template-http-api.yaml", {"PublicJwks": jwks, **mail}, True),
    ]


def normalise(call):
    """A call with its table and partition keys reduced to what the policies can tell apart."""
    resource = re.sub(r":table/[^/]+", f":table/{TABLE}", call["resource"])
    conditions = dict(call["conditions"])
    if "dynamodb:LeadingKeys" in conditions:
        conditions["dynamodb:LeadingKeys"] = sorted({re.sub(r"#.*", "#…", k) for k in conditions["dynamodb:LeadingKeys"]})
    if "dynamodb:Attributes" in conditions:
        conditions["dynamodb:Attributes"] = sorted(set(conditions["dynamodb:Attributes"]))
    return call["key"], call["action"], resource, json.dumps(conditions, sort_keys=True)


def candidate_parameters(action, resource):
    """The deployment's own names for what a call names: the SSM parameter auth-api was
    configured to read, the sender it was configured to send as."""
    if action.startswith("ssm:"):
        name = resource.split(":parameter", 1)[1]
        return [{"SigningKeyParameterName": name}, {"MfaKeyParameterName": name},
                {"WebhookSecretParameterName": name}, {"HookSecretParameterName": name},
                {"FederationSecretsParameterName": name}]
    if action.startswith("events:"):
        return [{"EventBusName": resource.split("event-bus/", 1)[1]}, {"EventBusName": resource}]
    if action.startswith("ses:"):
        return [{"SesFromAddress": resource.split("identity/", 1)[1]}]
    if action.startswith("lambda:"):
        return [{"HookBeforeUserCreated": resource}, {"HookCustomizeAccessToken": resource}]
    return [{}]


def check(logs):
    from sam_checks import translate

    calls = set()
    ignored = defaultdict(int)
    for path in logs:
        with open(path, encoding="utf-8") as f:
            for line in f:
                call = json.loads(line)
                if call["key"] in FUNCTIONS:
                    calls.add(normalise(call))
                else:
                    ignored[call["key"]] += 1
    by_function = defaultdict(set)
    for key, action, resource, conditions in calls:
        by_function[key].add((action, resource, conditions))

    # The recording itself must have worked: each of these was exercised by the suite.
    expected = {
        "authapi": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                     "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem",
                     "ssm:GetParameter", "ses:SendEmail", "lambda:InvokeFunction"],
        "sessionauthorizer": ["dynamodb:BatchGetItem"],
        "events": ["events:PutEvents", "ssm:GetParameter"],
    }
    failures = []
    for key, actions in expected.items():
        seen = {a for a, _, _ in by_function[key]}
        for action in actions:
            if action not in seen:
                failures.append(f"no {action} by {key} was recorded: the recording is broken, or "
                                f"the tests no longer exercise it")

    jwks = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "k"}]})
    checked = 0
    for label, path, parameters, sends_mail in deployments(jwks):
        template = translate(path, parameters)
        for key, function in FUNCTIONS.items():
            for action, resource, conditions in sorted(by_function[key]):
                if action.startswith("ses:") and not sends_mail:
                    continue
                base = role_policies(template, parameters, function)
                if base is None:
                    continue
                context = json.loads(conditions)
                verdicts = []
                for extra in candidate_parameters(action, resource):
                    policies = role_policies(template, {**parameters, **extra}, function)
                    verdicts.append((*evaluate(policies, action, resource, context), policies))
                checked += 1
                allowed = [v for v in verdicts if v[0] == "allowed"]
                if not allowed:
                    reasons = "; ".join(r for _, rs, _ in verdicts for r in rs)
                    failures.append(f"[{label}] {function} ({key}) is denied {action} on {resource} "
                                    f"with {context}: {reasons}")
                elif moto_permits(allowed[0][2], action, resource) is False:
                    failures.append(f"[{label}] {function}: {action} on {resource} allowed by "
                                    f"{allowed[0][1]} here, but not by moto's evaluator")
                # A grant scoped to one function: the role that may invoke the hook may
                # invoke no other function.
                if action == "lambda:InvokeFunction":
                    other = resource + "-other"
                    for extra in candidate_parameters(action, resource):
                        policies = role_policies(template, {**parameters, **extra}, function)
                        if evaluate(policies, action, other, context)[0] == "allowed":
                            failures.append(f"[{label}] {function} with {extra} may also invoke "
                                            f"{other}: the grant is not scoped to the hook")
    print(f"IAM: {len(calls)} distinct calls by the functions, {checked} evaluations across "
          f"{len(deployments(jwks))} deployments; calls by other keys (the tests' own, not checked): "
          f"{dict(ignored)}")
    for failure in failures:
        print("DENIED: " + failure)
    return not failures


def self_test():
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
    policy = [("p", {"Statement": [
        {"Sid": "Items", "Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": table},
        {"Sid": "Index", "Effect": "Allow", "Action": "dynamodb:Query", "Resource": table + "/index/gsi1"},
        {"Sid": "Fails", "Effect": "Allow", "Action": "dynamodb:Query", "Resource": table,
         "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["LOGINFAIL#*"]}}},
        {"Sid": "Batch", "Effect": "Allow", "Action": "dynamodb:BatchGetItem", "Resource": table,
         "Condition": {"ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk"]},
                       "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}}},
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "dynamodb:Delete*", "Resource": "*"},
        {"Sid": "All", "Effect": "Allow", "Action": "dynamodb:*", "Resource": table + "/nothing"},
    ]})]
    cases = [
        ("dynamodb:GetItem", table, {}, "allowed"),
        ("DynamoDB:getitem", table, {}, "allowed"),
        ("dynamodb:GetItem", table + "/index/gsi1", {}, "denied"),
        ("dynamodb:Query", table + "/index/gsi1", {}, "allowed"),
        ("dynamodb:Query", table + "/index/gsi2", {}, "denied"),
        ("dynamodb:Query", table, {"dynamodb:LeadingKeys": ["LOGINFAIL#…"]}, "allowed"),
        ("dynamodb:Query", table, {"dynamodb:LeadingKeys": ["USER#…"]}, "denied"),
        ("dynamodb:Query", table, {"dynamodb:LeadingKeys": ["LOGINFAIL#…", "USER#…"]}, "denied"),
        ("dynamodb:BatchGetItem", table, {"dynamodb:Attributes": ["pk"]}, "allowed"),
        ("dynamodb:BatchGetItem", table, {"dynamodb:Attributes": ["pk", "password"]}, "denied"),
        ("dynamodb:BatchGetItem", table, {"dynamodb:Attributes": ["pk"], "dynamodb:Select": "ALL_ATTRIBUTES"}, "denied"),
        ("dynamodb:DeleteItem", table, {}, "denied"),
        ("dynamodb:PutItem", table, {}, "denied"),
    ]
    for action, resource, context, want in cases:
        got = evaluate(policy, action, resource, context)[0]
        assert got == want, f"{action} {resource} {context}: {got}, expected {want}"
    print(f"IAM evaluator self-test: {len(cases)} cases as expected")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        sys.exit(0)
    self_test()
    sys.exit(0 if check(sys.argv[1:]) else 1)
