// podid-probe: the client the end-to-end tests and the demo run inside pods. Each subcommand does
// one network thing the way an application (or an attacker) would, and prints a machine-readable
// line: "ok key=value ..." or "fail errno=N (text)". Exit 0 on ok, 1 on fail, 2 on usage.
//
//   tcp HOST PORT [--v6mapped]              connect; print local and peer addresses (getpeername)
//   http HOST PORT PATH [--v6mapped] [-H 'Name: value']...   one GET; print status and body
//   loop HOST PORT PATH COUNT               COUNT GETs, one connection each; print ok/failed counts
//   keepalive HOST PORT PATH COUNT          COUNT GETs on one connection
//     (both: --expect TEXT counts a response as failed unless its status is 200 and its body holds TEXT)
//   raw-syn HOST PORT                       hand-made TCP SYN through a raw socket
//   udp HOST PORT                           one UDP datagram
//   icmp HOST                               ICMP echo through a raw socket
//   packet                                  open an AF_PACKET socket
//   packet-syn IPV4 PORT [IFACE]            a whole Ethernet frame (broadcast MAC, IPv4, TCP SYN) written on
//                                           IFACE (default eth0) through AF_PACKET: below every cgroup hook
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int fail(const char* what) {
    int err = errno;
    std::printf("fail op=%s errno=%d (%s)\n", what, err, std::strerror(err));
    return 1;
}

struct Target {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_INET;
};

bool make_target(const char* host, int port, bool v6mapped, Target& t) {
    if (v6mapped) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&t.addr);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(static_cast<uint16_t>(port));
        std::string mapped = std::string("::ffff:") + host;
        if (inet_pton(AF_INET6, mapped.c_str(), &a->sin6_addr) != 1)
            return false;
        t.len = sizeof(*a);
        t.family = AF_INET6;
        return true;
    }
    auto* a = reinterpret_cast<sockaddr_in*>(&t.addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return false;
    t.len = sizeof(*a);
    return true;
}

std::string format(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
        const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
        inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
        return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
    }
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof(buf));
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a.sin6_port));
}

void set_timeouts(int fd, int seconds) {
    timeval tv{seconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// --graceful-close: close like an ordinary client (FIN, no SO_LINGER reset), to see who keeps TIME_WAIT.
bool g_graceful_close = false;

int connect_to(const Target& t) {
    int fd = socket(t.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_timeouts(fd, 5);
    if (!g_graceful_close) {
        // Short-lived connections in loops: no TIME_WAIT pile-up on the client side.
        linger lg{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), t.len) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

// Sends one GET and reads one response (Content-Length framed). Returns status or -1.
int http_get(int fd, const std::string& host, const std::string& path, const std::vector<std::string>& headers,
             bool keep_alive, std::string* body) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n";
    for (const auto& h : headers)
        req += h + "\r\n";
    req += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
        return -1;
    std::string data;
    char buf[4096];
    size_t header_end = std::string::npos;
    size_t content_length = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        data.append(buf, static_cast<size_t>(n));
        if (header_end == std::string::npos) {
            header_end = data.find("\r\n\r\n");
            if (header_end != std::string::npos) {
                std::string lower;
                for (size_t i = 0; i < header_end; ++i)
                    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(data[i]))));
                auto cl = lower.find("content-length:");
                if (cl != std::string::npos)
                    content_length = std::strtoul(lower.c_str() + cl + 15, nullptr, 10);
            }
        }
        if (header_end != std::string::npos && data.size() >= header_end + 4 + content_length)
            break;
    }
    if (data.rfind("HTTP/1.", 0) != 0 || header_end == std::string::npos)
        return -1;
    if (body)
        *body = data.substr(header_end + 4, content_length);
    return std::atoi(data.c_str() + 9);
}

uint16_t checksum(const void* data, size_t len, uint32_t sum = 0) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += static_cast<uint32_t>(p[len - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return htons(static_cast<uint16_t>(~sum));
}

int raw_syn(const Target& t) {
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return fail("socket");
    tcphdr tcp{};
    tcp.source = htons(40000);
    tcp.dest = reinterpret_cast<const sockaddr_in&>(t.addr).sin_port;
    tcp.seq = htonl(1);
    tcp.doff = 5;
    tcp.syn = 1;
    tcp.window = htons(65535);
    // The checksum is only right by chance (no pseudo-header): enough to prove the packet never leaves.
    tcp.check = checksum(&tcp, sizeof(tcp));
    ssize_t n = sendto(fd, &tcp, sizeof(tcp), 0, reinterpret_cast<const sockaddr*>(&t.addr), t.len);
    if (n < 0)
        return fail("sendto");
    std::printf("ok op=raw-syn sent=%zd\n", n);
    return 0;
}

// The frame an attacker with CAP_NET_RAW would write: correct IPv4 and TCP checksums, so that nothing but a
// filter stops the node from answering it.
int packet_syn(const char* ip, int port, const char* iface) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0)
        return fail("socket");
    unsigned ifindex = if_nametoindex(iface);
    if (ifindex == 0)
        return fail("if_nametoindex");
    // Two bytes in front of the 14-byte Ethernet header put the IP and TCP headers on 4-byte boundaries, where
    // their struct types may be written (UBSan's misaligned-access check caught the unpadded frame).
    alignas(4) uint8_t buffer[2 + ETH_HLEN + sizeof(iphdr) + sizeof(tcphdr)]{};
    uint8_t* frame = buffer + 2;
    const size_t frame_len = sizeof(buffer) - 2;
    auto* eth = reinterpret_cast<ethhdr*>(frame);
    std::memset(eth->h_dest, 0xff, ETH_ALEN);
    const uint8_t src_mac[ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x42};
    std::memcpy(eth->h_source, src_mac, ETH_ALEN);
    eth->h_proto = htons(ETH_P_IP);
    auto* iph = reinterpret_cast<iphdr*>(frame + ETH_HLEN);
    iph->version = 4;
    iph->ihl = 5;
    iph->ttl = 64;
    iph->protocol = IPPROTO_TCP;
    iph->tot_len = htons(sizeof(iphdr) + sizeof(tcphdr));
    iph->saddr = inet_addr("10.77.0.250");
    iph->daddr = inet_addr(ip);
    iph->check = checksum(iph, sizeof(iphdr));
    auto* tcp = reinterpret_cast<tcphdr*>(frame + ETH_HLEN + sizeof(iphdr));
    tcp->source = htons(40001);
    tcp->dest = htons(static_cast<uint16_t>(port));
    tcp->seq = htonl(1);
    tcp->doff = 5;
    tcp->syn = 1;
    tcp->window = htons(65535);
    struct {
        uint32_t src, dst;
        uint8_t zero, proto;
        uint16_t len;
    } __attribute__((packed)) pseudo{iph->saddr, iph->daddr, 0, IPPROTO_TCP, htons(sizeof(tcphdr))};
    uint32_t sum = 0;
    const auto* pp = reinterpret_cast<const uint8_t*>(&pseudo);
    for (size_t i = 0; i < sizeof(pseudo); i += 2)
        sum += static_cast<uint32_t>(pp[i] << 8 | pp[i + 1]);
    tcp->check = checksum(tcp, sizeof(tcphdr), sum);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(ifindex);
    to.sll_halen = ETH_ALEN;
    std::memset(to.sll_addr, 0xff, ETH_ALEN);
    if (sendto(fd, frame, frame_len, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0)
        return fail("sendto");
    std::printf("ok op=packet-syn\n");
    return 0;
}

int udp(const Target& t) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail("socket");
    const char msg[] = "podid-probe";
    if (sendto(fd, msg, sizeof(msg), 0, reinterpret_cast<const sockaddr*>(&t.addr), t.len) < 0)
        return fail("sendto");
    std::printf("ok op=udp\n");
    return 0;
}

int icmp_echo(const Target& t) {
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (fd < 0)
        return fail("socket");
    icmphdr h{};
    h.type = ICMP_ECHO;
    h.un.echo.id = htons(7);
    h.un.echo.sequence = htons(1);
    h.checksum = checksum(&h, sizeof(h));
    if (sendto(fd, &h, sizeof(h), 0, reinterpret_cast<const sockaddr*>(&t.addr), t.len) < 0)
        return fail("sendto");
    std::printf("ok op=icmp\n");
    return 0;
}

int usage() {
    std::fprintf(stderr,
                 "usage: podid-probe tcp|http|loop|keepalive|raw-syn|udp|icmp|packet|packet-syn ... (see source)\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2)
        return usage();
    std::string cmd = argv[1];
    std::vector<std::string> rest(argv + 2, argv + argc);
    bool v6mapped = false;
    std::string expect;
    std::vector<std::string> headers, positional;
    for (size_t i = 0; i < rest.size(); ++i) {
        if (rest[i] == "--v6mapped")
            v6mapped = true;
        else if (rest[i] == "--graceful-close")
            g_graceful_close = true;
        else if (rest[i] == "-H" && i + 1 < rest.size())
            headers.push_back(rest[++i]);
        else if (rest[i] == "--expect" && i + 1 < rest.size())
            expect = rest[++i];
        else
            positional.push_back(rest[i]);
    }
    if (cmd == "packet-syn") {
        if (positional.size() < 2)
            return usage();
        return packet_syn(positional[0].c_str(), std::atoi(positional[1].c_str()),
                          positional.size() > 2 ? positional[2].c_str() : "eth0");
    }
    if (cmd == "packet") {
        int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
        if (fd < 0)
            return fail("socket");
        std::printf("ok op=packet\n");
        return 0;
    }
    if (positional.empty())
        return usage();
    Target t;
    int port = positional.size() > 1 ? std::atoi(positional[1].c_str()) : 0;
    if (!make_target(positional[0].c_str(), port, v6mapped, t))
        return usage();

    if (cmd == "tcp") {
        int fd = connect_to(t);
        if (fd < 0)
            return fail("connect");
        sockaddr_storage local{}, peer{};
        socklen_t ll = sizeof(local), pl = sizeof(peer);
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll);
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl);
        std::printf("ok op=tcp pid=%d local=%s peer=%s\n", getpid(), format(local).c_str(), format(peer).c_str());
        std::fflush(stdout);
        // Half-close and wait for the server to finish, as a real client waits for its answer: a reset
        // connection has no peer address left for the server to look its origin up by.
        shutdown(fd, SHUT_WR);
        char buf[512];
        while (recv(fd, buf, sizeof(buf), 0) > 0) {
        }
        close(fd);
        return 0;
    }
    if (cmd == "http" && positional.size() >= 3) {
        int fd = connect_to(t);
        if (fd < 0)
            return fail("connect");
        std::string body;
        int status = http_get(fd, positional[0], positional[2], headers, false, &body);
        close(fd);
        if (status < 0)
            return fail("http");
        std::printf("ok op=http status=%d body=%s\n", status, body.c_str());
        return 0;
    }
    if ((cmd == "loop" || cmd == "keepalive") && positional.size() >= 4) {
        int count = std::atoi(positional[3].c_str());
        int ok = 0, failed = 0;
        int fd = -1;
        for (int i = 0; i < count; ++i) {
            if (fd < 0)
                fd = connect_to(t);
            if (fd < 0) {
                ++failed;
                continue;
            }
            std::string body;
            int status = http_get(fd, positional[0], positional[2], headers, cmd == "keepalive", &body);
            bool good = expect.empty() ? status > 0 : (status == 200 && body.find(expect) != std::string::npos);
            if (!good && failed == 0)
                std::printf("first-failure status=%d body=%s\n", status, body.c_str());
            (good ? ok : failed)++;
            if (cmd == "loop" || status < 0) {
                close(fd);
                fd = -1;
            }
        }
        if (fd >= 0)
            close(fd);
        std::printf("%s op=%s ok=%d failed=%d\n", failed == 0 ? "ok" : "fail", cmd.c_str(), ok, failed);
        return failed == 0 ? 0 : 1;
    }
    // paced HOST PORT PATH COUNT GAP_MS WAIT_MS: COUNT keep-alive requests on one connection, GAP_MS apart, then
    // waits up to WAIT_MS for the server to close it. Prints how many were answered on that one connection and
    // when (ms after the last answer) the server closed it, -1 if it did not.
    if (cmd == "paced" && positional.size() >= 6) {
        const int count = std::atoi(positional[3].c_str());
        const int gap_ms = std::atoi(positional[4].c_str());
        const int wait_ms = std::atoi(positional[5].c_str());
        int fd = connect_to(t);
        if (fd < 0)
            return fail("connect");
        int answered = 0;
        for (int i = 0; i < count; ++i) {
            if (i > 0)
                usleep(static_cast<useconds_t>(gap_ms) * 1000);
            std::string body;
            if (http_get(fd, positional[0], positional[2], headers, true, &body) <= 0)
                break;
            ++answered;
        }
        set_timeouts(fd, (wait_ms + 999) / 1000);
        const auto last = std::chrono::steady_clock::now();
        char byte;
        const ssize_t n = recv(fd, &byte, 1, 0);
        const long closed_after = n == 0 ? static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                 std::chrono::steady_clock::now() - last)
                                                                 .count())
                                         : -1;
        close(fd);
        std::printf("%s op=paced answered=%d closed_after_ms=%ld\n", answered == count ? "ok" : "fail", answered,
                    closed_after);
        return answered == count ? 0 : 1;
    }
    if (cmd == "raw-syn")
        return raw_syn(t);
    if (cmd == "udp")
        return udp(t);
    if (cmd == "icmp")
        return icmp_echo(t);
    return usage();
}
