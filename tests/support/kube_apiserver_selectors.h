// labelSelector and fieldSelector as the API server parses and applies them to list and watch requests.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kube_apiserver_resources.h"

namespace podid::test::kube {

struct LabelRequirement {
    enum class Op { equals, not_equals, in, not_in, exists, not_exists };
    std::string key;
    Op op = Op::exists;
    std::vector<std::string> values;
};

struct FieldRequirement {
    std::string field;  // "spec.nodeName"
    bool equals = true;
    std::string value;
};

struct Selectors {
    std::vector<LabelRequirement> labels;  // all must hold
    std::vector<FieldRequirement> fields;  // all must hold
    bool matches(const nlohmann::json& object) const;
};

// Parses `labelSelector` ("a=b,c!=d,e in (x,y),f notin (z),g,!h") and `fieldSelector`
// ("spec.nodeName=n1,metadata.name!=x"); the error is the message of a 400 BadRequest.
struct ParsedSelectors {
    Selectors selectors;
    std::optional<std::string> error;
};
ParsedSelectors parse_selectors(const ResourceType& type, const std::string& label_selector,
                                const std::string& field_selector);

}  // namespace podid::test::kube
