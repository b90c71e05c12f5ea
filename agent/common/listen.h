// Listening TCP acceptors for the IMDS server and the metrics server: opened here, or received from the agent
// this one takes over from (admin/handover.h).
#pragma once

#include <memory>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/fd.h"
#include "common/result.h"

namespace podid {

// open + SO_REUSEADDR + bind + listen; the error names the address and `purpose` ("" or e.g. "for metrics").
Result<std::shared_ptr<boost::asio::ip::tcp::acceptor>> open_acceptor(const boost::asio::any_io_executor& executor,
                                                                      const boost::asio::ip::tcp::endpoint& endpoint,
                                                                      std::string_view purpose = {});

// The address the TCP socket `fd` is bound to; an error when it is not a TCP socket.
Result<boost::asio::ip::tcp::endpoint> bound_endpoint(int fd);

// Makes the listening TCP socket `fd` drop new connection attempts (a SYN without ACK) while handshakes already
// under way still complete into its accept queue: a classic BPF socket filter, which the kernel applies to a
// listener's SYNs and to the ACKs that complete its handshakes alike. Before a listener closes for good: what is
// queued can then be taken and answered, and nothing new enters the queue to be reset by the close. A client whose
// SYN was dropped retransmits it (after 1 s) and then meets whoever listens by then, or a refusal.
Result<void> refuse_new_handshakes(int fd);

// An acceptor serving a listening TCP socket this process received; takes `listener` on success. `purpose` as above.
Result<std::shared_ptr<boost::asio::ip::tcp::acceptor>> adopt_acceptor(const boost::asio::any_io_executor& executor,
                                                                       Fd listener, std::string_view purpose = {});

}  // namespace podid
