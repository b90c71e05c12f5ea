#include "policy/static_bindings_file.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/json_position.h"
#include "policy/cgroup_glob.h"

namespace podid {
namespace {

using nlohmann::json;

// {"bindings": [{"identities": [{...}]}]}: deeper values are not part of the schema and need no positions.
constexpr std::size_t kSchemaDepth = 5;

// A bindings entry's name: a metrics label value and a word in logs.
bool is_entry_name(std::string_view s) {
    if (s.empty() || s.size() > 63)
        return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
            return false;
    return true;
}

bool is_guid(std::string_view s) {
    if (s.size() != 36)
        return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

std::string ascii_lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// "/subscriptions/<sub>/resourcegroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>"
bool is_user_assigned_identity_id(std::string_view s) {
    std::string l = ascii_lower(std::string(s));
    if (l.rfind("/subscriptions/", 0) != 0)
        return false;
    for (char c : l)
        if (c <= ' ' || c == '?' || c == '&' || c == '#' || c == '%')
            return false;
    constexpr std::string_view kProvider = "/providers/microsoft.managedidentity/userassignedidentities/";
    auto at = l.find(kProvider);
    return at != std::string::npos && at + kProvider.size() < l.size() &&
           l.find('/', at + kProvider.size()) == std::string::npos;
}

class BindingsDocumentReader {
public:
    BindingsDocumentReader(std::string_view text, std::string_view source) : text_(text), source_(source) {}

    Result<std::shared_ptr<const BindingTable>> read() {
        json doc;
        try {
            doc = json::parse(text_);
        } catch (const json::parse_error& e) {
            return syntax_error(e);
        } catch (const json::exception& e) {
            return error_at(0, std::string("invalid JSON: ") + e.what());
        }
        positions_ = locate_json_values(text_, kSchemaDepth);
        if (positions_.duplicate) {
            const auto& [pointer, offset] = *positions_.duplicate;
            return error_at(offset, "duplicate key \"" + pointer.substr(pointer.rfind('/') + 1) + "\" (at " + pointer +
                                        "): only one value may be given");
        }
        if (!doc.is_object())
            return error_at(0, "the document must be an object {\"bindings\": [...]}");
        for (const auto& [key, value] : doc.items()) {
            if (key != "bindings")
                return error_at(offset_of("/" + json_pointer_escape(key)), "unknown key \"" + key + "\"");
        }
        if (!doc.contains("bindings"))
            return error_at(0, "missing \"bindings\" (a list of entries)");
        const json& list = doc["bindings"];
        if (!list.is_array())
            return error_at(offset_of("/bindings"), "\"bindings\" must be a list");

        std::vector<BindingTable::Entry> entries;
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto entry = read_entry(list[i], i);
            if (!entry)
                return entry.error();
            entries.push_back(std::move(*entry));
        }
        return std::shared_ptr<const BindingTable>(
            std::make_shared<BindingTable>(std::string(source_), std::move(entries)));
    }

private:
    Result<BindingTable::Entry> read_entry(const json& e, std::size_t i) {
        const std::string at = "/bindings/" + std::to_string(i);
        const std::string what = "bindings entry " + std::to_string(i + 1) + ": ";
        const std::size_t entry_offset = offset_of(at);
        if (!e.is_object())
            return error_at(entry_offset, what + "must be an object {\"cgroup\": ..., \"identities\": [...]}");
        for (const auto& [key, value] : e.items()) {
            if (key != "cgroup" && key != "identities" && key != "name")
                return error_at(offset_of(at + "/" + json_pointer_escape(key)), what + "unknown key \"" + key + "\"");
        }
        BindingTable::Entry entry;
        entry.name = "entry-" + std::to_string(i + 1);
        if (e.contains("name")) {
            const json& name = e["name"];
            if (!name.is_string() || !is_entry_name(name.get<std::string>()))
                return error_at(offset_of(at + "/name"),
                                what + "\"name\" must be 1-63 letters, digits, '.', '_' or '-' (it labels metrics)");
            entry.name = name.get<std::string>();
        }
        entry.line = text_position(text_, entry_offset).line;
        if (!e.contains("cgroup"))
            return error_at(entry_offset, what + "missing \"cgroup\" (a cgroup path pattern)");
        if (!e["cgroup"].is_string())
            return error_at(offset_of(at + "/cgroup"), what + "\"cgroup\" must be a string");
        entry.glob = e["cgroup"].get<std::string>();
        auto segments = compile_cgroup_glob(entry.glob);
        if (!segments)
            return error_at(offset_of(at + "/cgroup"),
                            what + "bad cgroup pattern \"" + entry.glob + "\": " + segments.error().message);
        entry.segments = std::move(*segments);

        if (!e.contains("identities"))
            return error_at(entry_offset, what + "missing \"identities\"");
        const json& ids = e["identities"];
        if (!ids.is_array() || ids.empty())
            return error_at(offset_of(at + "/identities"), what + "\"identities\" must be a non-empty list");
        for (std::size_t j = 0; j < ids.size(); ++j) {
            auto identity = read_identity(ids[j], at + "/identities/" + std::to_string(j),
                                          what + "identity " + std::to_string(j + 1) + ": ");
            if (!identity)
                return identity.error();
            if (identity->name.empty())
                identity->name = "bindings entry " + std::to_string(i + 1);
            entry.identities.push_back(std::move(*identity));
        }
        return entry;
    }

    Result<Identity> read_identity(const json& v, const std::string& at, const std::string& what) {
        const std::size_t offset = offset_of(at);
        if (!v.is_object())
            return error_at(offset, what + "must be an object such as {\"client_id\": \"<guid>\"}");
        Identity id;
        for (const auto& [key, value] : v.items()) {
            const std::size_t key_offset = offset_of(at + "/" + json_pointer_escape(key));
            if (key != "client_id" && key != "object_id" && key != "resource_id" && key != "msi_res_id" &&
                key != "name")
                return error_at(key_offset, what + "unknown key \"" + key +
                                                "\" (expected client_id, object_id, resource_id, name)");
            if (!value.is_string())
                return error_at(key_offset, what + "\"" + key + "\" must be a string");
            std::string s = value.get<std::string>();
            if (key == "client_id" || key == "object_id") {
                if (!is_guid(s))
                    return error_at(key_offset, what + key + " \"" + s + "\" is not a GUID");
                (key == "client_id" ? id.client_id : id.object_id) = ascii_lower(s);
            } else if (key == "resource_id" || key == "msi_res_id") {
                if (!id.resource_id.empty())
                    return error_at(key_offset, what + "give resource_id or msi_res_id, not both");
                if (!is_user_assigned_identity_id(s))
                    return error_at(key_offset, what + key + " \"" + s +
                                                    "\" is not a user-assigned identity id (/subscriptions/.../"
                                                    "providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
                                                    "<name>)");
                id.resource_id = s;
            } else {
                id.name = s;
            }
        }
        if (id.client_id.empty() && id.object_id.empty() && id.resource_id.empty())
            return error_at(offset, what + "needs at least one of client_id, object_id, resource_id");
        return id;
    }

    std::size_t offset_of(const std::string& pointer) const { return positions_.offset_of(pointer); }

    Error error_at(std::size_t offset, const std::string& reason) const {
        TextPosition at = text_position(text_, offset);
        return make_error(
            std::string(source_) + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " + reason,
            EINVAL);
    }

    Error syntax_error(const json::parse_error& e) const {
        // nlohmann's message repeats the position ("... at line 2, column 5: <reason>; last read: ..."), which
        // error_at gives in the file:line:column form: keep only the reason.
        std::string reason = e.what();
        if (auto c = reason.find("column "); c != std::string::npos) {
            if (auto colon = reason.find(": ", c); colon != std::string::npos)
                reason = reason.substr(colon + 2);
        }
        if (auto last = reason.find("; last read"); last != std::string::npos)
            reason.resize(last);
        return error_at(json_syntax_error_offset(text_, e.byte), "invalid JSON: " + reason);
    }

    std::string_view text_;
    std::string_view source_;
    JsonPositions positions_;
};

}  // namespace

Result<std::shared_ptr<const BindingTable>> parse_bindings_file(std::string_view json_text,
                                                                std::string_view source_name) {
    try {
        return BindingsDocumentReader(json_text, source_name).read();
    } catch (const std::exception& e) {  // allocation failure and the like: still an error value
        return make_error(std::string(source_name) + ": cannot parse bindings: " + e.what(), EINVAL);
    }
}

Result<std::shared_ptr<const BindingTable>> read_bindings_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        int err = errno;
        return make_error("cannot read bindings file " + path + ": " + std::strerror(err), err);
    }
    std::string text(kMaxBindingsFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (in.bad())
        return make_error("cannot read bindings file " + path, EIO);
    if (text.size() > kMaxBindingsFileBytes)
        return make_error(
            "bindings file " + path + " is larger than " + std::to_string(kMaxBindingsFileBytes) + " bytes", EFBIG);
    return parse_bindings_file(text, path);
}

}  // namespace podid
