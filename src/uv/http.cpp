#include "uv/http.hpp"

#include <curl/curl.h>

#include <map>
#include <utility>
#include <vector>

namespace chip::uv {

namespace {

constexpr std::size_t kMaxBody = 64u << 20;

}  // namespace

struct Http::Impl {
    struct Transfer {
        std::uint64_t id = 0;
        CURL *easy = nullptr;
        curl_slist *headers = nullptr;
        std::string body;      // the request's, kept alive for curl
        std::string received;  // the answer (collected, or an error's start)
        bool stream = false;
        Impl *impl = nullptr;
    };
    struct Pending {
        bool post;
        std::uint64_t id;
        std::string url;
        std::string body;
        bool stream;
        long timeout_ms;
    };

    Loop &loop;
    Tls tls;
    Data data;
    Done done;
    CURLM *multi = nullptr;
    Timer timer;
    std::map<std::uint64_t, std::unique_ptr<Transfer>> transfers;
    std::map<curl_socket_t, std::unique_ptr<Poll>> polls;
    // Polls curl is done with, freed outside their own callbacks.
    std::vector<std::unique_ptr<Poll>> graveyard;
    // post() and cancel() made while curl runs: curl forbids re-entry.
    int in_curl = 0;
    std::vector<Pending> pending;

    Impl(Loop &l, Tls t, Data d, Done dn)
        : loop(l), tls(std::move(t)), data(std::move(d)), done(std::move(dn)), timer(l, [this] {
              action(CURL_SOCKET_TIMEOUT, 0);
          }) {
        static const bool initialized = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
        (void)initialized;
        multi = curl_multi_init();
        curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
        curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
        curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
        curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    }

    ~Impl() {
        for (auto &[id, t] : transfers) release(*t);
        transfers.clear();
        curl_multi_cleanup(multi);
        polls.clear();
        graveyard.clear();
    }

    void release(Transfer &t) {
        curl_multi_remove_handle(multi, t.easy);
        curl_easy_cleanup(t.easy);
        curl_slist_free_all(t.headers);
    }

    // curl tells which sockets to watch for what.
    static int on_socket(CURL *, curl_socket_t s, int what, void *userp, void *) {
        auto *self = static_cast<Impl *>(userp);
        if (what == CURL_POLL_REMOVE) {
            if (auto it = self->polls.find(s); it != self->polls.end()) {
                it->second->stop();
                self->graveyard.push_back(std::move(it->second));
                self->polls.erase(it);
            }
            return 0;
        }
        auto &poll = self->polls[s];
        if (!poll)
            poll = std::make_unique<Poll>(self->loop, s, [self, s](int events) {
                int flags = 0;
                if (events & Poll::Readable) flags |= CURL_CSELECT_IN;
                if (events & Poll::Writable) flags |= CURL_CSELECT_OUT;
                self->action(s, flags);
            });
        int events = 0;
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= Poll::Readable;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= Poll::Writable;
        poll->start(events);
        return 0;
    }

    // curl's one timeout: -1 none, 0 at once (from the loop, not from here).
    static int on_timer(CURLM *, long timeout_ms, void *userp) {
        auto *self = static_cast<Impl *>(userp);
        if (timeout_ms < 0)
            self->timer.stop();
        else
            self->timer.start(static_cast<std::uint64_t>(timeout_ms == 0 ? 1 : timeout_ms));
        return 0;
    }

    static std::size_t on_write(char *ptr, std::size_t size, std::size_t n, void *userp) {
        auto *t = static_cast<Transfer *>(userp);
        std::size_t len = size * n;
        long code = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
        if (t->stream && code == 200) {
            t->impl->data(t->id, std::string_view(ptr, len));
            return len;
        }
        if (t->received.size() + len > kMaxBody) return 0;  // aborts: CURLE_WRITE_ERROR
        t->received.append(ptr, len);
        return len;
    }

    void action(curl_socket_t s, int flags) {
        graveyard.clear();
        int running = 0;
        ++in_curl;
        curl_multi_socket_action(multi, s, flags, &running);
        --in_curl;
        finish();
        run_pending();
    }

    // Transfers curl is done with: out of the multi, then to DONE.
    void finish() {
        int left = 0;
        while (CURLMsg *msg = curl_multi_info_read(multi, &left)) {
            if (msg->msg != CURLMSG_DONE) continue;
            Transfer *raw = nullptr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
            CURLcode result = msg->data.result;
            if (!raw) continue;
            auto it = transfers.find(raw->id);
            if (it == transfers.end()) continue;
            std::unique_ptr<Transfer> t = std::move(it->second);
            transfers.erase(it);
            long code = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
            release(*t);
            bool ok = result == CURLE_OK && code == 200;
            std::string error;
            if (result != CURLE_OK)
                error = curl_easy_strerror(result);
            else if (code != 200)
                error = "HTTP " + std::to_string(code) + ": " + t->received.substr(0, 200);
            done(t->id, ok, ok ? std::move(t->received) : std::string(), std::move(error));
        }
    }

    void run_pending() {
        while (!pending.empty() && in_curl == 0) {
            auto todo = std::exchange(pending, {});
            for (auto &p : todo) {
                if (p.post)
                    start(p.id, p.url, std::move(p.body), p.stream, p.timeout_ms);
                else
                    stop(p.id);
            }
        }
    }

    void start(std::uint64_t id, const std::string &url, std::string body, bool stream,
               long timeout_ms) {
        auto t = std::make_unique<Transfer>();
        t->id = id;
        t->body = std::move(body);
        t->stream = stream;
        t->impl = this;
        t->easy = curl_easy_init();
        if (!t->easy) {
            done(id, false, {}, "curl_easy_init failed");
            return;
        }
        CURL *e = t->easy;
        t->headers = curl_slist_append(nullptr, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_URL, url.c_str());
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body.c_str());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(t->body.size()));
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
        curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
        if (timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
        if (stream) {
            curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
            curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 5L);
            curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 2L);
        }
        if (!tls.ca.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, tls.ca.c_str());
        if (!tls.cert.empty()) curl_easy_setopt(e, CURLOPT_SSLCERT, tls.cert.c_str());
        if (!tls.key.empty()) curl_easy_setopt(e, CURLOPT_SSLKEY, tls.key.c_str());
        Transfer *raw = t.get();
        transfers[id] = std::move(t);
        if (curl_multi_add_handle(multi, raw->easy) != CURLM_OK) {
            auto owned = std::move(transfers[id]);
            transfers.erase(id);
            curl_easy_cleanup(owned->easy);
            curl_slist_free_all(owned->headers);
            done(id, false, {}, "curl_multi_add_handle failed");
        }
    }

    void stop(std::uint64_t id) {
        auto it = transfers.find(id);
        if (it == transfers.end()) return;
        std::unique_ptr<Transfer> t = std::move(it->second);
        transfers.erase(it);
        release(*t);
    }
};

Http::Http(Loop &loop, Tls tls, Data data, Done done)
    : impl_(std::make_unique<Impl>(loop, std::move(tls), std::move(data), std::move(done))) {}

Http::~Http() = default;

void Http::post(std::uint64_t id, const std::string &url, std::string body, bool stream,
                long timeout_ms) {
    if (impl_->in_curl) {
        impl_->pending.push_back({true, id, url, std::move(body), stream, timeout_ms});
        return;
    }
    impl_->start(id, url, std::move(body), stream, timeout_ms);
}

void Http::cancel(std::uint64_t id) {
    if (impl_->in_curl) {
        impl_->pending.push_back({false, id, {}, {}, false, 0});
        return;
    }
    impl_->stop(id);
}

std::size_t Http::active() const {
    return impl_->transfers.size();
}

}  // namespace chip::uv
