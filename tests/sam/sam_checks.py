"""What SAM really does with template.yaml, for tests/tests/openapi.rs.

Runs with the Python that has SAM CLI installed (scripts/test puts .tools/venv first on PATH):
- translate TEMPLATE PARAMETERS_JSON: the CloudFormation template SAM deploys, as JSON, from
  samtranslator, the library `sam deploy` itself uses.
- overrides WORD...: the parameters SAM CLI's own --parameter-overrides parser makes of these
  command-line words, as JSON.
- check TEMPLATE NAME VALUE: whether CloudFormation would accept VALUE for parameter NAME
  (AllowedPattern as a whole-value match, AllowedValues, MinValue/MaxValue, MinLength/MaxLength);
  prints "ok" or the reason.
- policy-sizes TEMPLATE PARAMETERS_JSON STACK_NAME EXTRA_ROUTES: the bytes of each function's
  resource-based policy (the AWS::Lambda::Permission statements SAM's translation leaves for
  it, as Lambda stores them, with CloudFormation's names for a stack called STACK_NAME), after
  adding EXTRA_ROUTES routes to the API; as JSON {function: [statements, bytes]}.
"""

import json
import os
import re
import sys


def load(path):
    from samtranslator.yaml_helper import yaml_parse

    with open(path, encoding="utf-8") as f:
        return yaml_parse(f.read())


def translate(path, parameters, extra_routes=0):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.public.translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    template = load(path)
    add_routes(template, extra_routes)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"

    class NoIam(ManagedPolicyLoader):
        def __init__(self):
            pass

        def load(self):
            return {}

    try:
        return transform(template, parameters, NoIam())
    except InvalidDocumentException as e:
        raise SystemExit("; ".join(str(c) for c in e.causes)) from e


def add_routes(template, count):
    """Adds `count` routes like the first protected one: to the API's DefinitionBody, or as
    events of the function that serves them."""
    if not count:
        return
    resources = template["Resources"]
    for resource in resources.values():
        body = resource.get("Properties", {}).get("DefinitionBody")
        if resource["Type"].startswith("AWS::Serverless::") and body:
            operation = body["paths"]["/me"]["get"]
            for n in range(count):
                body["paths"][f"/extra/route-number-{n}"] = {"post": operation}
            return
    function = resources["AuthApiFunction"]["Properties"]
    event = function["Events"]["Me"]
    for n in range(count):
        extra = {**event, "Properties": {**event["Properties"], "Path": f"/extra/route-number-{n}", "Method": "post"}}
        function["Events"][f"ExtraRoute{n}"] = extra


def policy_sizes(path, parameters, stack, extra_routes):
    """Each function's resource-based policy as Lambda keeps it: one statement per permission
    naming it (CloudFormation names a permission's statement `<stack>-<logical id>-<13
    characters>`, a function `<stack>-<logical id>-<13 characters>` cut to 64)."""
    template = translate(path, parameters, extra_routes)
    resources = template["Resources"]

    def physical(logical):
        return f"{stack}-{logical}-ABCDEFGHIJKLM"

    def functions_named(value):
        if isinstance(value, dict):
            if "Fn::GetAtt" in value:
                return [value["Fn::GetAtt"][0]]
            if "Ref" in value:
                return [value["Ref"]]
            if "Fn::If" in value:
                return functions_named(value["Fn::If"][1]) + functions_named(value["Fn::If"][2])
        return []

    def resolve(value):
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Fn::Sub" in value:
            text = value["Fn::Sub"]
            text = text[0] if isinstance(text, list) else text
            import re as _re

            return _re.sub(r"\$\{([^}]+)\}", lambda m: "a1b2c3d4e5" if "." not in m.group(1) and not m.group(1).startswith("AWS::") else {
                "AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
            }.get(m.group(1), "x" * 20), text)
        return "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/*"

    policies = {}
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Permission":
            continue
        props = resource["Properties"]
        for function in functions_named(props["FunctionName"]):
            name = physical(function)[:64]
            statement = {
                "Sid": physical(logical),
                "Effect": "Allow",
                "Principal": {"Service": props.get("Principal", "apigateway.amazonaws.com")},
                "Action": "lambda:InvokeFunction",
                "Resource": f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
                "Condition": {"ArnLike": {"AWS:SourceArn": resolve(props.get("SourceArn"))}},
            }
            if "SourceAccount" in props:
                statement["Condition"]["StringEquals"] = {"AWS:SourceAccount": "123456789012"}
            policies.setdefault(function, []).append(statement)
    return {
        function: [len(statements), len(json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": statements}, separators=(",", ":")))]
        for function, statements in policies.items()
    }


def overrides(words):
    from samcli.cli.types import CfnParameterOverridesType

    return CfnParameterOverridesType().convert(tuple(words), None, None)


def check(path, name, value):
    spec = load(path)["Parameters"][name]
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return "not one of AllowedValues"
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return "does not match AllowedPattern"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return "shorter than MinLength"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return "longer than MaxLength"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "not a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return "below MinValue"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return "above MaxValue"
    return "ok"


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "translate":
        print(json.dumps(translate(args[0], json.loads(args[1]))))
    elif command == "overrides":
        print(json.dumps(overrides(args)))
    elif command == "check":
        print(check(args[0], args[1], args[2]))
    elif command == "policy-sizes":
        print(json.dumps(policy_sizes(args[0], json.loads(args[1]), args[2], int(args[3]))))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
