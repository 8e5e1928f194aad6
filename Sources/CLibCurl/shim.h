#ifndef CLIBCURL_SHIM_H
#define CLIBCURL_SHIM_H

#include <curl/curl.h>

// Swift cannot call the variadic curl_easy_setopt: typed setter for long options (flags, timeouts).
static inline CURLcode tgw_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

// Swift cannot call the variadic curl_easy_setopt: typed setter for curl_off_t options (sizes past 2 GiB).
static inline CURLcode tgw_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

// Swift cannot call the variadic curl_easy_setopt: typed setter for string options (curl copies them).
static inline CURLcode tgw_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

// Swift cannot call the variadic curl_easy_setopt: typed setter for data pointers (sinks, error buffer).
static inline CURLcode tgw_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

// Swift cannot call the variadic curl_easy_setopt: typed setter for header lists (CURLOPT_HTTPHEADER).
static inline CURLcode tgw_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

// Swift cannot call the variadic curl_easy_setopt: typed setter for WRITEFUNCTION and HEADERFUNCTION.
static inline CURLcode tgw_curl_easy_setopt_write_callback(CURL *handle, CURLoption option,
                                                           curl_write_callback value) {
    return curl_easy_setopt(handle, option, value);
}

// Swift cannot call the variadic curl_easy_getinfo: typed getter for long results (status, counts).
static inline CURLcode tgw_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

// Swift cannot call the variadic curl_easy_getinfo: typed getter for curl_off_t results (timings in us).
static inline CURLcode tgw_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

// Swift cannot call the variadic curl_multi_setopt: typed setter for long multi options (cache sizes).
static inline CURLMcode tgw_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

// The CURLMsg result sits in an anonymous-member union; a getter keeps Swift off the union layout.
static inline CURLcode tgw_curl_msg_result(const CURLMsg *message) {
    return message->data.result;
}

#endif
