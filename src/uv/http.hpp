// HTTP POSTs on chipd's loop: libcurl's multi-socket API driven by libuv (one
// uv poll per socket curl opens, one timer for curl's timeout), so that no
// thread blocks and no HTTP is written by hand. Only this folder includes
// <curl/curl.h> (tests/layers/check_layers.py).
//
// What it does not do: retries, redirects, proxies (NOPROXY "*": etcd is
// reached directly), or anything but POST with a JSON body. Callbacks run on
// the loop; post() and cancel() may be called from inside them (they take
// effect once curl has returned). A transfer that is canceled gets no
// callback. A collected answer is bounded (64 MiB); a streamed one is not.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "uv/uv.hpp"

namespace chip::uv {

class Http {
public:
    struct Tls {
        std::string ca;    // empty: the system's CAs
        std::string cert;  // client certificate and its key; empty: none
        std::string key;
    };
    // DATA(id, chunk): a chunk of a streamed answer. DONE(id, ok, body,
    // error): the transfer is over; OK when it got HTTP 200 (BODY is the
    // answer, empty when streamed), else ERROR says why (curl's message, or
    // "HTTP 404: <body>").
    using Data = std::function<void(std::uint64_t, std::string_view)>;
    using Done = std::function<void(std::uint64_t, bool, std::string, std::string)>;

    Http(Loop &loop, Tls tls, Data data, Done done);
    ~Http();
    Http(const Http &) = delete;
    Http &operator=(const Http &) = delete;

    // POSTs BODY to URL as transfer ID. STREAM: the answer goes to DATA as it
    // comes. TIMEOUT_MS: the whole transfer's limit (0: none; connecting is
    // always limited to 2 s).
    void post(std::uint64_t id, const std::string &url, std::string body, bool stream,
              long timeout_ms);
    void cancel(std::uint64_t id);
    // Transfers under way.
    std::size_t active() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace chip::uv
