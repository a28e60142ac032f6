"use strict";
const { setUp } = require("./servers");
module.exports = async () => { await setUp(); };
