#include "kube_apiserver_selectors.h"

#include <algorithm>

namespace podid::test::kube {
namespace {

using nlohmann::json;

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos)
        return "";
    size_t e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

// Splits on commas that are not inside "( )", so "a in (x,y),b" is two requirements.
std::vector<std::string> split_terms(const std::string& text) {
    std::vector<std::string> terms;
    std::string cur;
    int depth = 0;
    for (char c : text) {
        if (c == '(')
            ++depth;
        if (c == ')')
            --depth;
        if (c == ',' && depth == 0) {
            terms.push_back(trim(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!trim(cur).empty() || !terms.empty())
        terms.push_back(trim(cur));
    return terms;
}

std::optional<LabelRequirement> parse_set_requirement(const std::string& term) {
    for (auto [word, op] :
         {std::pair{" notin ", LabelRequirement::Op::not_in}, std::pair{" in ", LabelRequirement::Op::in}}) {
        size_t at = term.find(word);
        if (at == std::string::npos)
            continue;
        std::string rest = trim(term.substr(at + std::string(word).size()));
        if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')')
            return std::nullopt;
        LabelRequirement req{trim(term.substr(0, at)), op, {}};
        std::string inner = rest.substr(1, rest.size() - 2);
        size_t start = 0;
        for (;;) {
            size_t comma = inner.find(',', start);
            req.values.push_back(trim(inner.substr(start, comma - start)));
            if (comma == std::string::npos)
                break;
            start = comma + 1;
        }
        return req;
    }
    return std::nullopt;
}

std::optional<LabelRequirement> parse_label_term(const std::string& term) {
    if (term.empty())
        return std::nullopt;
    if (auto set = parse_set_requirement(term))
        return set;
    for (auto [token, op] :
         {std::pair{"!=", LabelRequirement::Op::not_equals}, std::pair{"==", LabelRequirement::Op::equals},
          std::pair{"=", LabelRequirement::Op::equals}}) {
        size_t at = term.find(token);
        if (at == std::string::npos)
            continue;
        LabelRequirement req{trim(term.substr(0, at)), op, {trim(term.substr(at + std::string(token).size()))}};
        if (req.key.empty())
            return std::nullopt;
        return req;
    }
    if (term[0] == '!')
        return LabelRequirement{trim(term.substr(1)), LabelRequirement::Op::not_exists, {}};
    if (term.find_first_of(" ()") != std::string::npos)
        return std::nullopt;
    return LabelRequirement{term, LabelRequirement::Op::exists, {}};
}

std::optional<FieldRequirement> parse_field_term(const std::string& term) {
    for (auto [token, equals] : {std::pair{"!=", false}, std::pair{"==", true}, std::pair{"=", true}}) {
        size_t at = term.find(token);
        if (at == std::string::npos)
            continue;
        return FieldRequirement{trim(term.substr(0, at)), equals, trim(term.substr(at + std::string(token).size()))};
    }
    return std::nullopt;
}

// The value a field selector compares: strings as they are, booleans as "true"/"false", missing as "".
std::string field_value(const json& object, const std::string& field) {
    const json* cur = &object;
    size_t start = 0;
    for (;;) {
        size_t dot = field.find('.', start);
        std::string part = field.substr(start, dot - start);
        if (!cur->is_object() || !cur->contains(part))
            return "";
        cur = &(*cur)[part];
        if (dot == std::string::npos)
            break;
        start = dot + 1;
    }
    if (cur->is_string())
        return cur->get<std::string>();
    if (cur->is_boolean())
        return cur->get<bool>() ? "true" : "false";
    if (cur->is_null())
        return "";
    return cur->dump();
}

bool label_holds(const LabelRequirement& req, const json& labels) {
    bool has = labels.is_object() && labels.contains(req.key) && labels[req.key].is_string();
    std::string value = has ? labels[req.key].get<std::string>() : "";
    auto in_values = [&] { return std::find(req.values.begin(), req.values.end(), value) != req.values.end(); };
    switch (req.op) {
    case LabelRequirement::Op::equals: return has && value == req.values.front();
    case LabelRequirement::Op::not_equals: return !has || value != req.values.front();
    case LabelRequirement::Op::in: return has && in_values();
    case LabelRequirement::Op::not_in: return !has || !in_values();
    case LabelRequirement::Op::exists: return has;
    case LabelRequirement::Op::not_exists: return !has;
    }
    return false;
}

}  // namespace

bool Selectors::matches(const json& object) const {
    static const json no_labels = json::object();
    const json& meta = object.contains("metadata") ? object["metadata"] : no_labels;
    const json& obj_labels = meta.contains("labels") ? meta["labels"] : no_labels;
    for (const auto& req : labels)
        if (!label_holds(req, obj_labels))
            return false;
    for (const auto& req : fields)
        if ((field_value(object, req.field) == req.value) != req.equals)
            return false;
    return true;
}

ParsedSelectors parse_selectors(const ResourceType& type, const std::string& label_selector,
                                const std::string& field_selector) {
    ParsedSelectors out;
    for (const auto& term : split_terms(label_selector)) {
        auto req = parse_label_term(term);
        if (!req) {
            out.error = "unable to parse requirement: found '" + term + "', expected: identifier";
            return out;
        }
        out.selectors.labels.push_back(*req);
    }
    for (const auto& term : split_terms(field_selector)) {
        auto req = parse_field_term(term);
        if (!req) {
            out.error = "invalid selector: '" + field_selector + "'; can't understand '" + term + "'";
            return out;
        }
        bool known =
            req->field == "metadata.name" || req->field == "metadata.namespace" ||
            std::find(type.field_labels.begin(), type.field_labels.end(), req->field) != type.field_labels.end();
        if (!known) {
            // The real API server's wording, which clients surface to users.
            out.error = "field label not supported: " + req->field;
            return out;
        }
        out.selectors.fields.push_back(*req);
    }
    return out;
}

}  // namespace podid::test::kube
