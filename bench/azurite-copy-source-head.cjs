// Preloaded into Azurite by bench/copy.sh (`node --require`): validates the source of a
// cross-account Copy Blob with a HEAD instead of downloading the whole blob.
//
// Why: Azurite 3.35 (the version scripts/setup.sh installs) checks that a cross-account copy
// source is readable by sending `GET <source URL>&comp=metadata` to itself through axios
// (BlobHandler.validateCopySource). Azurite has no Get Blob Metadata operation and dispatches
// that request as a full Download Blob (Azure/Azurite#646), so axios buffers the whole source
// and turns it into one JavaScript string. Past V8's longest string (536,870,888 characters on
// this Node.js, about 512 MiB) that throws ERR_STRING_TOO_LONG, and the copy answers HTTP 500;
// below it, the copy takes as long as downloading and decoding the source. Azurite fixed this
// upstream (Azure/Azurite#2680, released in 3.37.0, which requires Node.js 22; this machine
// runs 20): validate with a bodiless HEAD (Get Blob Properties) and repeat the request as the
// old GET only when the HEAD fails or the source is archived, to keep the error details.
//
// This file applies the same change to the axios instance Azurite uses (BlobHandler is its
// only user of axios). The copy itself is untouched.
"use strict";

const path = require("node:path");

const handlers = path.join(__dirname, "..", "tools", "azurite", "node_modules", "azurite", "dist", "src", "blob", "handlers");
const axios = require(require.resolve("axios", { paths: [handlers] }));
const get = axios.get.bind(axios);

axios.get = async function getValidatingWithHead(url, config) {
  const source = new URL(url);
  if (source.searchParams.get("comp") !== "metadata") {
    return get(url, config);
  }
  source.searchParams.delete("comp");
  const head = await axios.head(source.toString(), { validateStatus: () => true });
  if (head.status === 200 && head.headers["x-ms-access-tier"] !== "Archive") {
    return head;
  }
  return get(url, { ...config, decompress: false });
};
