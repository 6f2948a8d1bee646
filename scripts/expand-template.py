"""Expand a template's Fn::ForEach (AWS::LanguageExtensions) as CloudFormation does, and write it back.

template.yaml generates each function's log group, integration, route, invoke
permission and alarms with Fn::ForEach. CloudFormation expands that at deploy,
but SAM CLI's own local expansion (1.170) flattens every Fn::Sub and Fn::Join
that names a resource into a plain string: `integrations/${XIntegration}`
stays literally that, so `sam local start-api` finds no function behind any
route. This expands the template with cfn-lint's implementation instead (the
one `cfn-lint template.yaml` checks with), which resolves only the loop
variables and the Fn::FindInMap they feed, and keeps every other intrinsic for
CloudFormation. The result needs no AWS::LanguageExtensions, so `sam local`,
`sam package` and `sam deploy` all read plain SAM.

`make build`, scripts/check-template.sh and scripts/sam-local-test.sh run it on
.aws-sam/build/template.yaml after `sam build`.
Usage: .venv/bin/python scripts/expand-template.py TEMPLATE [OUT]   (OUT defaults to TEMPLATE)
"""
import copy
import json
import sys

import yaml
from cfnlint.decode import decode
from cfnlint.template import Template
from cfnlint.template.transforms._language_extensions import language_extension

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"

src = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else src
template, problems = decode(src)
if problems:
    sys.exit(f"expand-template.py: {src}: {problems[0]}")
transforms = template.get("Transform", [])
transforms = transforms if isinstance(transforms, list) else [transforms]
if LANGUAGE_EXTENSIONS in transforms:
    source = copy.deepcopy(template)
    problems, template = language_extension(Template(src, template))
    if problems:
        sys.exit(f"expand-template.py: {src}: {problems[0].message}")
    # cfn-lint's Template reorders each Fn::Equals; with no loop in them, the
    # conditions stay as written.
    if "Fn::ForEach" not in json.dumps(source.get("Conditions", {})):
        template["Conditions"] = source.get("Conditions")
    # cfn-lint's node types carry line marks; plain JSON values dump as plain YAML.
    template = json.loads(json.dumps(template))
    rest = [str(t) for t in transforms if t != LANGUAGE_EXTENSIONS]
    template["Transform"] = rest[0] if len(rest) == 1 else rest
    # The mappings only fed the loops: unused now (cfn-lint W7001).
    if "Fn::FindInMap" not in json.dumps(template):
        template.pop("Mappings", None)
with open(out, "w") as f:
    yaml.safe_dump(template, f, sort_keys=False, width=1000)
