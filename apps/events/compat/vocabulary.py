"""The keywords the checker knows, the bounds on its work, and the words its messages use."""

TYPE_ORDER = ("null", "boolean", "object", "array", "number", "integer", "string")
TYPES = frozenset(TYPE_ORDER)
ARTICLES = {"null": "null", "boolean": "a boolean", "object": "an object", "array": "an array", "number": "a number"}
ARTICLES |= {"integer": "an integer", "string": "a string"}
ANNOTATIONS = frozenset(  # no effect on which instances validate
    {"title", "description", "examples", "example", "default", "$comment", "deprecated", "readOnly", "writeOnly"}
    | {"$schema", "$id", "$anchor", "$dynamicAnchor", "$vocabulary", "$defs", "definitions", "discriminator"}
    | {"contentMediaType", "contentEncoding", "contentSchema", "externalDocs", "xml"}
)
HANDLED = frozenset(  # compared by the checker (additionalItems: next to the pre-2020 array form of items)
    {"type", "nullable", "enum", "const", "$ref", "allOf", "anyOf", "oneOf", "not", "properties", "required"}
    | {"additionalProperties", "patternProperties", "minProperties", "maxProperties", "items", "prefixItems"}
    | {"additionalItems", "minItems", "maxItems", "uniqueItems", "minimum", "exclusiveMinimum", "maximum"}
    | {"exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "format"}
)
# Their meaning depends on sibling keywords or on the dynamic scope, so equal values prove nothing.
NEVER_PROVABLE = frozenset({"unevaluatedProperties", "unevaluatedItems", "$dynamicRef"})
APPLICATORS = frozenset({"allOf", "anyOf", "oneOf", "$ref", "$dynamicRef", "if", "then", "else", "dependentSchemas"})
TIGHTEST = {k: max for k in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")}
TIGHTEST |= {k: min for k in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")}
COUNT_RULES = {"minLength": "min_length_raised", "maxLength": "max_length_lowered", "minItems": "min_items_raised"}
COUNT_RULES |= {"maxItems": "max_items_lowered", "minProperties": "min_properties_raised"}
COUNT_RULES |= {"maxProperties": "max_properties_lowered"}
OBJECT_KEYWORDS = (("properties", dict), ("patternProperties", dict), ("required", list))
MAX_DEPTH, MAX_CHECKS = 200, 20_000  # nesting levels plus $ref hops; comparisons per check
W, R = "producer's", "reader's"  # the two sides, as they appear in messages
