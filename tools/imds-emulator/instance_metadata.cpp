#include "instance_metadata.h"

namespace podid::emulator {

nlohmann::json instance_document(const VmProfile& vm) {
    nlohmann::json compute = {
        {"azEnvironment", "AzurePublicCloud"},
        {"location", vm.location},
        {"name", vm.vm_name},
        {"osType", "Linux"},
        {"provider", "Microsoft.Compute"},
        {"resourceGroupName", vm.resource_group},
        {"resourceId", vm.resource_id()},
        {"subscriptionId", vm.subscription_id},
        {"vmId", vm.vm_id},
        {"vmSize", "Standard_D2s_v3"},
        {"zone", ""},
        {"tagsList", nlohmann::json::array()},
    };
    nlohmann::json ipv4 = {
        {"ipAddress", nlohmann::json::array({{{"privateIpAddress", vm.private_ip}, {"publicIpAddress", ""}}})},
        {"subnet", nlohmann::json::array({{{"address", "10.224.0.0"}, {"prefix", "16"}}})},
    };
    nlohmann::json nic = {
        {"ipv4", ipv4},
        {"ipv6", {{"ipAddress", nlohmann::json::array()}}},
        {"macAddress", "000D3A5C0FFE"},
    };
    return {{"compute", compute}, {"network", {{"interface", nlohmann::json::array({nic})}}}};
}

HttpResponse answer_instance(const HttpRequest& req, const Target& target, std::string_view sub_path,
                             const VmProfile& vm) {
    nlohmann::json doc = instance_document(vm);
    std::string pointer(sub_path);
    while (pointer.size() > 1 && pointer.back() == '/') pointer.pop_back();
    if (pointer == "/") pointer.clear();

    nlohmann::json node;
    try {
        node = doc.at(nlohmann::json::json_pointer(pointer));
    } catch (const nlohmann::json::exception&) {
        return imds_error(req, 404, "not_found", "No instance metadata at this path");
    }
    if (param(target, "format").value_or("json") == "text") {
        if (node.is_structured()) return imds_error(req, 400, "invalid_request", "format=text needs a leaf value");
        auto res = json_response(req, 200, node.is_string() ? node.get<std::string>() : node.dump());
        res.set(boost::beast::http::field::content_type, "text/plain; charset=utf-8");
        return res;
    }
    return json_response(req, 200, node.dump());
}

}  // namespace podid::emulator
