// The API reference, rendered from openapi.json with no library: every operation with its parameters, body and
// answers, then every schema. Relative URLs, so it works under a stage prefix (/api/docs) and locally (/docs).
"use strict";

const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
};

const refName = (ref) => ref.split("/").pop();

function typeOf(schema) {
  if (!schema) return "";
  if (schema.$ref) return refName(schema.$ref);
  if (schema.oneOf || schema.anyOf) return (schema.oneOf || schema.anyOf).map(typeOf).join(" | ");
  if (schema.type === "array") return `${typeOf(schema.items)}[]`;
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  return schema.format ? `${schema.type} (${schema.format})` : (schema.type || "any");
}

function propertiesTable(schema) {
  const properties = schema.properties || {};
  const required = new Set(schema.required || []);
  const rows = Object.entries(properties).map(([name, property]) => el("tr", {},
    el("td", {}, el("code", {}, name), required.has(name) ? " *" : ""),
    el("td", {}, typeOf(property)),
    el("td", {}, property.description || property.title || "")));
  return el("table", {}, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "field"),
    el("th", { scope: "col" }, "type"), el("th", { scope: "col" }, "description"))), el("tbody", {}, ...rows));
}

function operation(path, method, op) {
  const body = el("div");
  if (op.description) body.append(el("p", {}, op.description));
  const parameters = op.parameters || [];
  if (parameters.length) {
    body.append(el("h4", {}, "Parameters"), el("table", {}, el("tbody", {}, ...parameters.map((p) => el("tr", {},
      el("td", {}, el("code", {}, p.name), p.required ? " *" : ""), el("td", {}, p.in), el("td", {}, typeOf(p.schema)),
      el("td", {}, p.description || ""))))));
  }
  const request = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (request) body.append(el("h4", {}, "Body"), el("p", {}, el("code", {}, typeOf(request.schema))));
  const answers = Object.entries(op.responses || {}).map(([status, answer]) => {
    const content = answer.content || {};
    const first = Object.values(content)[0];
    return el("tr", {}, el("td", {}, status), el("td", {}, answer.description || ""),
      el("td", {}, first ? typeOf(first.schema) : ""));
  });
  body.append(el("h4", {}, "Answers"), el("table", {}, el("tbody", {}, ...answers)));
  const lock = op.security && op.security.length ? el("span", { class: "lock" }, " (bearer token)") : "";
  return el("details", { id: op.operationId || `${method}-${path}` },
    el("summary", {}, el("span", { class: `method ${method}` }, method), " ", el("code", {}, path), " ",
      op.summary || "", lock), body);
}

async function render() {
  const main = document.getElementById("reference");
  const response = await fetch("openapi.json");
  const doc = await response.json();
  main.replaceChildren(el("p", {}, doc.info.description || ""), el("h2", {}, "Operations"));
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) main.append(operation(path, method, op));
  }
  main.append(el("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    main.append(el("details", { id: `schema-${name}` }, el("summary", {}, el("code", {}, name), " ",
      schema.description || ""), el("div", {}, schema.properties ? propertiesTable(schema) : el("p", {},
      el("code", {}, typeOf(schema))))));
  }
}

render().catch((error) => {
  document.getElementById("reference").replaceChildren(el("p", { role: "alert" }, `Could not load the document: ${error}`));
});
